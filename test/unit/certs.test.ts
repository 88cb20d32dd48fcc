// Cluster CA and node certificates made by certs.ts (openssl), checked with Node's X.509 parser.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CertError, createClusterCa, createNodeCert } from '../../control/src/cluster/certs.js';
import { IdentityError, nodeIdOfCertificate } from '../../control/src/cluster/peer-identity.js';

const base = mkdtempSync(join(tmpdir(), 'sw-certs-'));
after(() => rmSync(base, { recursive: true, force: true }));

const DAY_MS = 86_400_000;
const validDays = (c: X509Certificate): number => Math.round((Date.parse(c.validTo) - Date.parse(c.validFrom)) / DAY_MS);
const mode = (path: string): number => statSync(path).mode & 0o777;

test('CA and node certificate: names, SAN, lifetimes, signature, key modes', () => {
  const dir = join(base, 'a');
  const ca = createClusterCa(dir, 'prod-1');
  const node = createNodeCert(dir, 7, 'prod-1');
  const caCert = new X509Certificate(readFileSync(ca.cert));
  const nodeCert = new X509Certificate(readFileSync(node.cert));
  assert.equal(caCert.ca, true);
  assert.equal(nodeCert.ca, false);
  assert.equal(nodeCert.subject, 'O=syncwall\nOU=prod-1\nCN=node-7');
  assert.equal(nodeCert.subjectAltName, 'DNS:node-7');
  assert.equal(nodeCert.checkIssued(caCert), true);
  assert.equal(nodeCert.verify(caCert.publicKey), true);
  assert.equal(nodeCert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.equal(validDays(caCert), 3650);
  assert.equal(validDays(nodeCert), 730);
  assert.equal(mode(ca.key), 0o600);
  assert.equal(mode(node.key), 0o600);
  assert.equal(nodeIdOfCertificate(nodeCert.toLegacyObject(), 'prod-1'), 7);
  assert.throws(() => nodeIdOfCertificate(nodeCert.toLegacyObject(), 'prod-2'), IdentityError);
  assert.throws(() => nodeIdOfCertificate(caCert.toLegacyObject(), 'prod-1'), /is not node-<id>/);
});

test('existing files are kept unless forced; errors name the problem', () => {
  const dir = join(base, 'b');
  assert.throws(() => createNodeCert(dir, 1, 'c'), /ca\.pem is missing/);
  const ca = createClusterCa(dir, 'c');
  const before = readFileSync(ca.cert, 'utf8');
  assert.throws(() => createClusterCa(dir, 'c'), (err: Error) => err instanceof CertError && /already exist.*--force/.test(err.message));
  assert.equal(readFileSync(ca.cert, 'utf8'), before);
  createClusterCa(dir, 'c', { force: true });
  assert.notEqual(readFileSync(ca.cert, 'utf8'), before);
  createNodeCert(dir, 2, 'c');
  assert.throws(() => createNodeCert(dir, 2, 'c'), /node-2\.pem and .*node-2-key\.pem already exist/);
  assert.throws(() => createNodeCert(dir, 3, 'other'), /CA of cluster 'c', not 'other'/);
  assert.throws(() => createNodeCert(dir, 70000, 'c'), /1 to 65535/);
  assert.throws(() => createClusterCa(join(base, 'x'), 'a b'), /cluster id/);
});
