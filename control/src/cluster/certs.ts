// Cluster CA and node certificates for the peer sync channel's mutual TLS,
// made with the openssl CLI (Node can parse X.509 but not sign it): EC P-256
// keys, a CA valid 10 years, node certificates valid 2 years naming the node
// as CN=node-<id>, O=syncwall, OU=<cluster id>, with the CN as DNS SAN.
// Keys are written 0600; nothing is overwritten unless asked to.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CERT_ORGANIZATION, checkClusterId, checkNodeId, nodeCommonName } from './peer-identity.js';

const CA_DAYS = 3650;
const NODE_DAYS = 730;

export class CertError extends Error {
  override name = 'CertError';
}

export interface CertFiles {
  cert: string;
  key: string;
}

export const caFiles = (dir: string): CertFiles => ({ cert: join(dir, 'ca.pem'), key: join(dir, 'ca-key.pem') });
export const nodeFiles = (dir: string, nodeId: number): CertFiles => ({
  cert: join(dir, `${nodeCommonName(nodeId)}.pem`),
  key: join(dir, `${nodeCommonName(nodeId)}-key.pem`),
});

export interface CertOptions {
  /** Replace existing files instead of refusing. */
  force?: boolean;
}

function openssl(args: string[], what: string): string {
  try {
    return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    const reason = e.code === 'ENOENT' ? 'openssl is not installed' : (e.stderr ?? '').trim() || e.message;
    throw new CertError(`${what}: ${reason}`, { cause: err });
  }
}

function refuseOverwrite(files: CertFiles, force: boolean | undefined): void {
  if (force) return;
  const present = [files.cert, files.key].filter((f) => existsSync(f));
  if (present.length > 0) throw new CertError(`${present.join(' and ')} already exist${present.length === 1 ? 's' : ''} (use --force to replace)`);
}

/** Writes a file with `mode`, also when replacing one that had looser permissions. */
function writeWithMode(path: string, data: string, mode: number): void {
  writeFileSync(path, data, { mode });
  chmodSync(path, mode);
}

function newKey(path: string): void {
  writeWithMode(path, openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], 'generating an EC P-256 key'), 0o600);
}

const subject = (clusterId: string, cn: string): string => `/O=${CERT_ORGANIZATION}/OU=${clusterId}/CN=${cn}`;

/** Creates ca.pem and ca-key.pem in `dir` (created if missing); returns their paths. */
export function createClusterCa(dir: string, clusterId: string, opts: CertOptions = {}): CertFiles {
  checkClusterId(clusterId);
  const files = caFiles(dir);
  refuseOverwrite(files, opts.force);
  mkdirSync(dir, { recursive: true });
  newKey(files.key);
  const cert = openssl(
    [
      'req', '-new', '-x509', '-sha256', '-days', String(CA_DAYS),
      '-key', files.key,
      '-subj', subject(clusterId, `syncwall-ca-${clusterId}`),
      '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ],
    'creating the cluster CA certificate',
  );
  writeWithMode(files.cert, cert, 0o644);
  return files;
}

/** The cluster a CA certificate was made for (its OU). */
function caCluster(caCertPath: string): string | undefined {
  const subjectLines = new X509Certificate(readFileSync(caCertPath)).subject.split('\n');
  return subjectLines.find((l) => l.startsWith('OU='))?.slice(3);
}

/** Signs node-<id>.pem (+ node-<id>-key.pem) with the CA in `dir`; returns their paths. */
export function createNodeCert(dir: string, nodeId: number, clusterId: string, opts: CertOptions = {}): CertFiles {
  checkClusterId(clusterId);
  checkNodeId(nodeId);
  const ca = caFiles(dir);
  for (const f of [ca.cert, ca.key]) if (!existsSync(f)) throw new CertError(`${f} is missing: create the CA first (syncwall cert ca)`);
  const caOu = caCluster(ca.cert);
  if (caOu !== clusterId) throw new CertError(`${ca.cert} is the CA of cluster '${String(caOu)}', not '${clusterId}'`);
  const files = nodeFiles(dir, nodeId);
  refuseOverwrite(files, opts.force);
  newKey(files.key);
  const cn = nodeCommonName(nodeId);
  const cert = openssl(
    [
      'req', '-new', '-x509', '-sha256', '-days', String(NODE_DAYS),
      '-key', files.key,
      '-CA', ca.cert, '-CAkey', ca.key,
      '-subj', subject(clusterId, cn),
      '-addext', 'basicConstraints=critical,CA:FALSE',
      '-addext', 'keyUsage=critical,digitalSignature',
      '-addext', 'extendedKeyUsage=serverAuth,clientAuth',
      '-addext', `subjectAltName=DNS:${cn}`,
    ],
    `signing the certificate of ${cn}`,
  );
  writeWithMode(files.cert, cert, 0o644);
  return files;
}

/** The PEM material a node's transport needs, read from the layout above. */
export function readNodeTls(dir: string, nodeId: number): { ca: Buffer; cert: Buffer; key: Buffer } {
  const node = nodeFiles(dir, nodeId);
  const read = (path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new CertError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
    }
  };
  return { ca: read(caFiles(dir).cert), cert: read(node.cert), key: read(node.key) };
}
