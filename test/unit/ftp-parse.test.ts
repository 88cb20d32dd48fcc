import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addressBytes } from '../../control/src/net/address.js';
import { FTP_MAX_LINE, parseFtpPayload, type FtpEndpoints } from '../../control/src/helpers/ftp-parse.js';

const v4: FtpEndpoints = { family: 4, client: addressBytes('10.1.0.2'), server: addressBytes('10.2.0.2') };
const v6: FtpEndpoints = { family: 6, client: addressBytes('fd00:1::2'), server: addressBytes('fd00:2::2') };
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

function expect(text: string, fromClient: boolean, ends: FtpEndpoints) {
  const r = parseFtpPayload(bytes(text), fromClient, ends);
  assert.equal(r.kind, 'expect', `${JSON.stringify(text)} gave ${JSON.stringify(r)}`);
  return r.kind === 'expect' ? r.expectation : undefined!;
}

function refusal(text: string | Uint8Array, fromClient: boolean, ends: FtpEndpoints): string {
  const r = parseFtpPayload(typeof text === 'string' ? bytes(text) : text, fromClient, ends);
  assert.equal(r.kind, 'refused', `${JSON.stringify(text)} gave ${JSON.stringify(r)}`);
  return r.kind === 'refused' ? r.reason : '';
}

describe('FTP helper parsing', () => {
  it('PORT from the client expects the server to connect back to the client', () => {
    const e = expect('PORT 10,1,0,2,195,80\r\n', true, v4);
    assert.deepEqual(e, { mode: 'active', from: v4.server, to: v4.client, port: 195 * 256 + 80 });
    assert.equal(expect('port 10,1,0,2,4,1\n', true, v4).port, 1025);
  });

  it('227 from the server expects the client to connect to the server', () => {
    const e = expect('227 Entering Passive Mode (10,2,0,2,117,49).\r\n', false, v4);
    assert.deepEqual(e, { mode: 'passive', from: v4.client, to: v4.server, port: 117 * 256 + 49 });
    assert.equal(expect('227 =10,2,0,2,8,0\r\n', false, v4).port, 2048);
  });

  it('EPRT and EPSV for IPv6 and IPv4', () => {
    assert.deepEqual(expect('EPRT |2|fd00:1::2|50000|\r\n', true, v6), { mode: 'active', from: v6.server, to: v6.client, port: 50000 });
    assert.equal(expect('EPRT !1!10.1.0.2!40000!\r\n', true, v4).port, 40000);
    assert.deepEqual(expect('229 Entering Extended Passive Mode (|||6446|)\r\n', false, v6), { mode: 'passive', from: v6.client, to: v6.server, port: 6446 });
  });

  it('other lines create nothing', () => {
    for (const [text, fromClient] of [['USER anonymous\r\n', true], ['230 Login successful.\r\n', false], ['PORT 10,1,0,2,195,80\r\n', false], ['227 (10,2,0,2,1,1)\r\n', true], ['PASV\r\n', true], ['', true], ['PORT', true]] as const) {
      assert.equal(parseFtpPayload(bytes(text), fromClient, v4).kind, 'none', text);
    }
  });

  it('refuses a PORT or 227 naming a third host (bounce)', () => {
    assert.equal(refusal('PORT 192,0,2,99,195,80\r\n', true, v4), 'address-mismatch');
    assert.equal(refusal('227 Entering Passive Mode (10,1,0,2,117,49)\r\n', false, v4), 'address-mismatch');
    assert.equal(refusal('EPRT |2|fd00:9::9|50000|\r\n', true, v6), 'address-mismatch');
  });

  it('refuses privileged ports, wrong families, truncated, oversized and malformed lines', () => {
    assert.equal(refusal('PORT 10,1,0,2,0,25\r\n', true, v4), 'privileged-port');
    assert.equal(refusal('EPRT |1|10.1.0.2|40000|\r\n', true, v6), 'family-mismatch');
    assert.equal(refusal('PORT 10,1,0,2,195,80\r\n', true, v6), 'family-mismatch');
    assert.equal(refusal('PORT 10,1,0,2,195,80', true, v4), 'truncated');
    assert.equal(refusal(`PORT 10,1,0,2,195,80${' '.repeat(FTP_MAX_LINE)}\r\n`, true, v4), 'oversized');
    assert.equal(refusal(`PORT ${'9'.repeat(FTP_MAX_LINE * 2)}`, true, v4), 'oversized');
    for (const bad of ['PORT 10,1,0,2,195\r\n', 'PORT 10,1,0,256,1,1\r\n', 'PORT 10,1,0,2,195,80,1\r\n', 'PORT 10.1.0.2,195,80\r\n', 'PORT -1,1,0,2,4,1\r\n']) {
      assert.equal(refusal(bad, true, v4), 'malformed', bad);
    }
    for (const bad of ['EPRT |3|10.1.0.2|40000|\r\n', 'EPRT |1|10.1.0.2|70000|\r\n', 'EPRT |1|10.1.0.2|0|\r\n', 'EPRT |1|10.1.0.2|40000\r\n', 'EPRT |2|fd00:1::2%eth0|50000|\r\n', 'EPRT  \r\n']) {
      assert.equal(refusal(bad, true, bad.includes('|2|') ? v6 : v4), 'malformed', bad);
    }
    for (const bad of ['229 Entering Extended Passive Mode (|||99999|)\r\n', '229 Entering Extended Passive Mode (|!|6446|)\r\n', '229 nothing\r\n', '227 Entering Passive Mode\r\n']) {
      assert.equal(refusal(bad, false, bad.startsWith('229') ? v6 : v4), 'malformed', bad);
    }
  });

  it('never throws on hostile bytes', () => {
    let seed = 7;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let i = 0; i < 5000; i++) {
      const prefix = ['PORT ', 'EPRT ', '227 ', '229 '][i % 4]!;
      const tail = Uint8Array.from({ length: Math.floor(rnd() * 80) }, () => Math.floor(rnd() * 256));
      const payload = new Uint8Array([...bytes(prefix), ...tail]);
      const r = parseFtpPayload(payload, i % 4 < 2, i % 2 ? v4 : v6);
      assert.ok(r.kind === 'refused' || r.kind === 'none' || r.kind === 'expect');
    }
  });
});
