// Which bucket a lab flow falls in and who owns it, computed with the
// controller's own functions (control/src/cluster), so a test can pick
// source ports whose flows land on the node it wants.
import { isIPv4 } from 'node:net';
import { flowKey, FLOW_KEY_SIZE } from '../../control/src/bpf/codec.js';
import { bucketOf } from '../../control/src/cluster/bucket.js';
import { computeOwnership, type ClusterMode } from '../../control/src/cluster/ownership.js';

const FAMILY_V4 = 4;
const PROTO_TCP = 6;

function v4Bytes(addr: string): Uint8Array {
  if (!isIPv4(addr)) throw new Error(`${addr}: the lab's bucket helper handles IPv4 only`);
  return Uint8Array.from(addr.split('.').map(Number));
}

function lessOrEqual(a: Uint8Array, aPort: number, b: Uint8Array, bPort: number): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return aPort <= bPort;
}

/** The bucket of an IPv4 TCP flow, normalized as bpf/lib/flow_key.h does. */
export function tcp4Bucket(src: string, sport: number, dst: string, dport: number): number {
  const s = v4Bytes(src);
  const d = v4Bytes(dst);
  const srcIsA = lessOrEqual(s, sport, d, dport);
  const buf = new Uint8Array(FLOW_KEY_SIZE);
  flowKey.write(buf, 0, {
    family: FAMILY_V4,
    proto: PROTO_TCP,
    addrA: srcIsA ? s : d,
    addrB: srcIsA ? d : s,
    portA: srcIsA ? sport : dport,
    portB: srcIsA ? dport : sport,
  });
  return bucketOf(buf, 0);
}

/** Owner and backups of a bucket for a membership. */
export function bucketGroup(bucket: number, members: readonly number[], mode: ClusterMode, k: number): { owner: number; backups: number[] } {
  const o = computeOwnership(members, mode, k);
  return { owner: o.owner[bucket]!, backups: o.backups(bucket) };
}

/**
 * Fixed client ports must stay below the kernel's default ephemeral range
 * (32768-60999): a port picked from inside it can already be taken by an
 * earlier test's connection (or its TIME_WAIT), and the bind fails with
 * EADDRINUSE.
 */
export const FIRST_EPHEMERAL_PORT = 32768;

/** The first source port from `from` upwards, below the ephemeral range, whose flow satisfies pred(bucket). */
export function pickSourcePort(src: string, dst: string, dport: number, from: number, pred: (bucket: number) => boolean): number {
  for (let port = from; port < FIRST_EPHEMERAL_PORT; port++) if (pred(tcp4Bucket(src, port, dst, dport))) return port;
  throw new Error(`no source port from ${from} below the ephemeral range fits`);
}
