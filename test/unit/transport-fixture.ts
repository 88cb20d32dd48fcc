// Shared by the transport tests: real certificates (made once per run by
// certs.ts), transports on 127.0.0.1 with ephemeral ports, a logger whose
// lines the tests can read, and a bounded wait.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { createClusterCa, createNodeCert, readNodeTls } from '../../control/src/cluster/certs.js';
import { PeerTransport, type TransportOptions } from '../../control/src/cluster/transport.js';
import type { NodeState, SyncPayload } from '../../control/src/cluster/types.js';

export const CLUSTER = 'test-cluster';

/** A cluster CA with node certs 1-3, and a second CA (same cluster id) with its own node certs 1-3. */
export function makeCertDirs(): { good: string; foreign: string; cleanup(): void } {
  const base = mkdtempSync(join(tmpdir(), 'sw-certs-'));
  const good = join(base, 'good');
  const foreign = join(base, 'foreign');
  for (const dir of [good, foreign]) {
    createClusterCa(dir, CLUSTER);
    for (const id of [1, 2, 3]) createNodeCert(dir, id, CLUSTER);
  }
  return { good, foreign, cleanup: () => rmSync(base, { recursive: true, force: true }) };
}

export interface Node {
  transport: PeerTransport;
  messages: { from: number; payload: SyncPayload }[];
  states: { id: number; state: NodeState; incarnation: string }[];
  logs: string[];
  incarnation: string;
}

export interface NodeSpec {
  id: number;
  peers: { id: number; address: string }[];
  certDir: string;
  /** whose certificate to present (default: its own id) */
  certId?: number;
  listen?: string;
  heartbeatMs?: number;
  failureTimeoutMs?: number;
  onMessage?: (node: Node, from: number, payload: SyncPayload) => void;
  extra?: Partial<TransportOptions>;
}

export async function startNode(spec: NodeSpec): Promise<Node> {
  const logs: string[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(line) });
  const incarnation = randomUUID();
  const node: Node = { transport: undefined as unknown as PeerTransport, messages: [], states: [], logs, incarnation };
  node.transport = new PeerTransport(
    {
      clusterId: CLUSTER,
      nodeId: spec.id,
      incarnation,
      listen: spec.listen ?? '127.0.0.1:0',
      peers: spec.peers,
      tls: readNodeTls(spec.certDir, spec.certId ?? spec.id),
      heartbeatMs: spec.heartbeatMs ?? 50,
      failureTimeoutMs: spec.failureTimeoutMs ?? 400,
      log,
      ...spec.extra,
    },
    {
      peerState: (id, state, inc) => node.states.push({ id, state, incarnation: inc }),
      message: (from, payload) => {
        node.messages.push({ from, payload });
        spec.onMessage?.(node, from, payload);
      },
    },
  );
  await node.transport.start();
  return node;
}

export const addr = (n: Node): string => `127.0.0.1:${n.transport.port}`;

/** Polls `cond` until it holds; fails after `ms` (a bound against hangs, not a timing assertion). */
export async function waitFor(what: string, cond: () => boolean, ms = 15000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
