// `syncwall peers`, `syncwall sync mode CLASS MODE` and `syncwall node drain`:
// the cluster commands, table or JSON output.
import type { ClusterStatusView, DrainResult, PeerView, SyncModeChange } from '../api/backend.js';
import { formatDuration, formatTable, toJson } from './output.js';

const optionalMs = (ms: number | null): string => (ms === null ? '-' : formatDuration(Math.round(ms)));

export function formatPeers(peers: readonly PeerView[], json: boolean): string {
  if (json) return `${toJson(peers, 2)}\n`;
  return formatTable(
    [
      { header: 'ID', align: 'right' },
      { header: 'ADDRESS' },
      { header: 'STATE' },
      { header: 'CONNECTED' },
      { header: 'INCARNATION' },
      { header: 'HEARTBEAT' },
      { header: 'LAG', align: 'right' },
      { header: 'UNACKED', align: 'right' },
      { header: 'BUCKETS', align: 'right' },
    ],
    peers.map((p) => [
      String(p.id),
      p.address,
      p.state,
      p.connected ? 'yes' : 'no',
      p.incarnation || '-',
      p.lastHeartbeatAgoMs === null ? '-' : `${optionalMs(p.lastHeartbeatAgoMs)} ago`,
      optionalMs(p.lagMs),
      String(p.unacked),
      String(p.bucketsOwned),
    ]),
  );
}

/** The cluster rows of `syncwall status`. */
export function clusterStatusRows(c: ClusterStatusView): string[][] {
  return [
    ['cluster', `${c.clusterId}, node ${c.nodeId}, ${c.state}`],
    ['mode', `${c.mode}, ${c.backups} backup${c.backups === 1 ? '' : 's'} per bucket`],
    ['sync', `node-specific ${c.syncNode}, common ${c.syncCommon}`],
    ['members', c.members.join(', ') || '-'],
    ['buckets', `${c.bucketsOwned} owned, ${c.bucketsBackedUp} backed up`],
  ];
}

export function formatSyncModeChange(c: SyncModeChange, json: boolean): string {
  if (json) return `${toJson(c)}\n`;
  return `sync mode of ${c.stateClass === 'node' ? 'node-specific' : 'common'} state: ${c.mode} (was ${c.previous})\n`;
}

export function formatDrain(d: DrainResult, json: boolean): string {
  if (json) return `${toJson(d)}\n`;
  const acked = d.acked ? 'all peers acknowledged' : 'NOT acknowledged by every peer in time';
  return `drained in ${formatDuration(d.durationMs)}: ${d.bucketsHandedOver} buckets handed over, ${d.entriesPushed} entries pushed, ${acked}\n`;
}
