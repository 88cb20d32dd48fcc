// `syncwall status` and `syncwall stats`: one reply each, table or JSON.
import type { StatsView, StatusView } from '../api/backend.js';
import { clusterStatusRows } from './cluster.js';
import { formatDuration, formatTable, toJson } from './output.js';

export function formatStatus(s: StatusView, json: boolean): string {
  if (json) return `${toJson(s, 2)}\n`;
  const summary = formatTable(
    [{ header: 'KEY' }, { header: 'VALUE' }],
    [
      ['version', s.version],
      ['node', String(s.nodeId)],
      ['uptime', formatDuration(s.uptimeMs)],
      ['rules', `${s.ruleCount} from ${s.rulesFile}, loaded ${s.rulesLoadedAt}`],
      ['connections', `${s.connections} of ${s.tableCapacity} (counted ${formatDuration(s.connectionsCountedMsAgo)} ago)`],
      ...(s.cluster ? clusterStatusRows(s.cluster) : []),
    ],
    { headers: false },
  );
  const interfaces = formatTable(
    [{ header: 'INTERFACE' }, { header: 'ZONE' }, { header: 'IFINDEX', align: 'right' }, { header: 'XDP' }],
    s.interfaces.map((i) => [i.name, i.zone, String(i.ifindex), i.xdpMode]),
  );
  return `${summary}\n${interfaces}`;
}

export function formatStats(s: StatsView, json: boolean): string {
  if (json) return `${toJson(s, 2)}\n`;
  const rows = (scope: string, counters: Record<string, bigint>): string[][] =>
    Object.keys(counters)
      .sort()
      .map((name) => [scope, name, String(counters[name])]);
  return formatTable(
    [{ header: 'SCOPE' }, { header: 'COUNTER' }, { header: 'VALUE', align: 'right' }],
    [...rows('datapath', s.datapath), ...rows('controller', s.controller), ...rows('cluster', s.cluster)],
  );
}
