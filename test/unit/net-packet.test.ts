// The packet builder's checksums verified independently (a valid checksum
// sums to 0xffff over header + pseudo-header), address formatting, and the
// frame description.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addressBytes, AddressError, formatAddress, formatMac, macBytes } from '../../control/src/net/address.js';
import { finishChecksum, sumWords } from '../../control/src/net/checksum.js';
import { describeFrame } from '../../control/src/net/describe.js';
import { buildFrame, buildIpPacket, PacketBuildError, tcpFlagBits } from '../../control/src/net/packet.js';

/** Sum of an L4 segment with its pseudo-header; 0 after finishChecksum when the checksum is right. */
function l4Residue(ip: Uint8Array, l4Off: number, proto: number, v6: boolean): number {
  const len = ip.length - l4Off;
  const pseudo = proto === 1 ? 0 : v6 ? sumWords(ip, 8, 40) + proto + len : sumWords(ip, 12, 20) + proto + len;
  return finishChecksum(sumWords(ip, l4Off, ip.length, pseudo));
}

describe('packet builder', () => {
  it('IPv4 header and TCP checksums verify (odd-length payload, options)', () => {
    const ip = buildIpPacket(
      { version: 4, src: '198.51.100.10', dst: '203.0.113.20', options: Uint8Array.from([1, 1, 1]) },
      { proto: 'tcp', sport: 40000, dport: 80, seq: 1, flags: 'S', options: [{ kind: 'mss', value: 1460 }, { kind: 'wscale', shift: 7 }], payload: Uint8Array.from([1, 2, 3]) },
    );
    assert.equal(ip[0], 0x46, 'IHL 6 with 4 bytes of options');
    assert.equal(finishChecksum(sumWords(ip, 0, 24)), 0);
    assert.equal(ip[24 + 12]! >> 4, 7, 'data offset covers 7 option bytes padded to 8');
    assert.equal(l4Residue(ip, 24, 6, false), 0);
  });

  it('a known IPv4 header checksum', () => {
    // RFC 1071-style example header: 45 00 00 73 00 00 40 00 40 11 .. .. c0 a8 00 01 c0 a8 00 c7 -> b861
    const ip = buildIpPacket({ version: 4, src: '192.168.0.1', dst: '192.168.0.199', dontFragment: true }, { proto: 'udp', sport: 1, dport: 2, payload: new Uint8Array(0x73 - 28) });
    assert.equal((ip[10]! << 8) | ip[11]!, 0xb861);
  });

  it('UDP and ICMPv6 over IPv6 with extension headers verify', () => {
    const ext = [{ type: 'hop-by-hop' }, { type: 'destination', options: new Uint8Array(9) }] as const;
    const udp = buildIpPacket({ version: 6, src: '2001:db8::1', dst: '2001:db8::2', extensions: [...ext] }, { proto: 'udp', sport: 53, dport: 5353, payload: new Uint8Array(7).fill(9) });
    assert.equal(udp[6], 0, 'next header: hop-by-hop');
    assert.equal((udp[4]! << 8) | udp[5]!, udp.length - 40);
    const l4 = 40 + 8 + 16;
    assert.equal(udp[40 + 8]! , 17, 'destination options point at UDP');
    assert.equal(l4Residue(udp, l4, 17, true), 0);
    const icmp = buildIpPacket({ version: 6, src: 'fe80::1', dst: 'ff02::1' }, { proto: 'icmp', type: 128, id: 5, seq: 6, payload: new Uint8Array(5) });
    assert.equal(l4Residue(icmp, 40, 58, true), 0);
  });

  it('ICMPv4 has no pseudo-header; an error quotes the packet given', () => {
    const quoted = buildIpPacket({ version: 4, src: '198.51.100.1', dst: '203.0.113.1' }, { proto: 'udp', sport: 1, dport: 2 });
    const err = buildIpPacket({ version: 4, src: '203.0.113.254', dst: '198.51.100.1' }, { proto: 'icmp', type: 3, code: 3, payload: quoted });
    assert.equal(l4Residue(err, 20, 1, false), 0);
    assert.deepEqual(err.subarray(28), quoted);
  });

  it('Ethernet with QinQ tags', () => {
    const f = buildFrame({ eth: { vlans: [{ id: 100, tpid: 0x88a8 }, { id: 10, pcp: 3 }] }, ip: { version: 6, src: '::1', dst: '::2' }, l4: { proto: 'udp', sport: 1, dport: 2 } });
    assert.deepEqual(Array.from(f.subarray(12, 22)), [0x88, 0xa8, 0x00, 100, 0x81, 0x00, 0x60, 10, 0x86, 0xdd]);
  });

  it('overrides produce the bogus fields asked for', () => {
    const ip = buildIpPacket({ version: 4, src: '1.2.3.4', dst: '5.6.7.8', ihl: 3, totalLength: 999 }, { proto: 'tcp', sport: 1, dport: 2, flags: 'A', dataOffset: 2 });
    assert.equal(ip[0], 0x43);
    assert.equal((ip[2]! << 8) | ip[3]!, 999);
    assert.equal(ip[20 + 12], 0x20);
  });

  it('rejects unknown flags and mismatched address families', () => {
    assert.equal(tcpFlagBits('SA'), 0x12);
    assert.throws(() => tcpFlagBits('SX'), PacketBuildError);
    assert.throws(() => buildIpPacket({ version: 4, src: '2001:db8::1', dst: '1.2.3.4' }, { proto: 'udp', sport: 1, dport: 2 }), PacketBuildError);
  });
});

describe('addresses', () => {
  it('round-trips IPv4 and IPv6 with RFC 5952 text', () => {
    const cases: [string, string][] = [
      ['198.51.100.7', '198.51.100.7'],
      ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
      ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
      ['::', '::'],
      ['::1', '::1'],
      ['fe80::', 'fe80::'],
      ['::ffff:192.0.2.1', '::ffff:c000:201'],
    ];
    for (const [input, text] of cases) assert.equal(formatAddress(addressBytes(input)), text, input);
    assert.equal(addressBytes('10.1.2.3').length, 4);
    assert.equal(addressBytes('::').length, 16);
  });

  it('rejects what is not an address', () => {
    for (const bad of ['1.2.3', '1.2.3.256', 'fe80::1%eth0', 'x', '1::2::3']) assert.throws(() => addressBytes(bad), AddressError, bad);
    assert.throws(() => formatAddress(new Uint8Array(5)), AddressError);
  });

  it('MAC addresses', () => {
    assert.equal(formatMac(macBytes('2:0:5E:0:0:1')), '02:00:5e:00:00:01');
    assert.throws(() => macBytes('02:00:5e:00:00'), AddressError);
  });
});

describe('frame description', () => {
  it('names every layer and survives truncation', () => {
    const f = buildFrame({ eth: { vlans: [{ id: 7 }] }, ip: { version: 4, src: '198.51.100.1', dst: '203.0.113.2', ttl: 9 }, l4: { proto: 'tcp', sport: 1234, dport: 80, seq: 5, flags: 'SA', payload: new Uint8Array(3) } });
    assert.equal(
      describeFrame(f),
      'eth 02:00:00:00:00:01 > 02:00:00:00:00:02, vlan 7, ipv4 198.51.100.1 > 203.0.113.2 ttl 9 ihl 20 len 43, tcp 1234 > 80 [SA] seq 5 ack 0 win 64240 doff 20 len 3 (61 bytes)',
    );
    for (let len = 0; len < f.length; len++) assert.equal(typeof describeFrame(f.subarray(0, len)), 'string');
  });
});
