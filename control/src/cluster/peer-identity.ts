// How a node's certificate names it: CN=node-<id>, O=syncwall, OU=<cluster id>,
// and the same name as a DNS SAN (TLS name checks want a SAN; the sync client
// sets it as the target name, so peers can be dialled by IP address).
import type { PeerCertificate } from 'node:tls';

export const CERT_ORGANIZATION = 'syncwall';
/** Node ids are u16 in the data plane (flow_entry.owner_node); 0 means nobody. */
export const MAX_NODE_ID = 0xffff;
const CLUSTER_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export class IdentityError extends Error {
  override name = 'IdentityError';
}

export function nodeCommonName(nodeId: number): string {
  return `node-${nodeId}`;
}

export function checkNodeId(nodeId: number): void {
  if (!Number.isInteger(nodeId) || nodeId < 1 || nodeId > MAX_NODE_ID)
    throw new IdentityError(`node id must be an integer from 1 to ${MAX_NODE_ID}, got ${nodeId}`);
}

/** Cluster ids go into certificate subjects: letters, digits, '.', '_', '-' (at most 64). */
export function checkClusterId(clusterId: string): void {
  if (!CLUSTER_ID.test(clusterId))
    throw new IdentityError(`cluster id must be 1-64 letters, digits, '.', '_' or '-' (starting with a letter or digit), got '${clusterId}'`);
}

/** Subject fields may be repeated (string[]) in Node's parsed certificates; a repeated field is not a valid identity. */
function single(v: string | string[] | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/**
 * The node id a (CA-verified) peer certificate names, or an IdentityError
 * saying why the certificate does not name a node of this cluster.
 */
export function nodeIdOfCertificate(cert: PeerCertificate | undefined, clusterId: string): number {
  if (!cert?.subject) throw new IdentityError('peer presented no certificate');
  const cn = single(cert.subject.CN);
  const ou = single(cert.subject.OU);
  const m = cn === undefined ? null : /^node-([1-9][0-9]{0,4})$/.exec(cn);
  if (!m) throw new IdentityError(`certificate CN '${String(cert.subject.CN)}' is not node-<id>`);
  if (ou !== clusterId) throw new IdentityError(`certificate ${cn} belongs to cluster '${String(cert.subject.OU)}', not '${clusterId}'`);
  const id = Number(m[1]);
  checkNodeId(id);
  return id;
}
