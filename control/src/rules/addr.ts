// Address and prefix parsing for the rules file. Addresses become 16-byte
// network-order buffers (IPv4 in the first 4 bytes) so the matcher treats
// both families alike.

import { isIP } from 'node:net';
import { addressBytes } from '../net/address.js';
import type { Family, Prefix } from './types.js';

/** Parses a dotted-quad or IPv6 address; undefined if it is neither. */
export function parseAddress(text: string): { family: Family; addr: Uint8Array } | undefined {
  // Zone ids (fe80::1%eth0) name an interface, not an address a rule can hold.
  if (!isIP(text) || text.includes('%')) return undefined;
  const bytes = addressBytes(text);
  const addr = new Uint8Array(16);
  addr.set(bytes);
  return { family: bytes.length === 4 ? 4 : 6, addr };
}

/** True if any bit at or beyond `len` is set. */
function hasHostBits(addr: Uint8Array, len: number): boolean {
  for (let bit = len; bit < 128; bit++) {
    if ((addr[bit >> 3]! >> (7 - (bit & 7))) & 1) return true;
  }
  return false;
}

/** Parses `addr` or `addr/len`; returns the prefix or a message saying what is wrong. */
export function parsePrefix(text: string): Prefix | string {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const parsed = parseAddress(addrText);
  if (!parsed) return `"${text}" is not an IPv4 or IPv6 address or prefix`;
  const max = parsed.family === 4 ? 32 : 128;
  let len = max;
  if (slash >= 0) {
    const lenText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > max) {
      return `"${text}": prefix length must be 0..${max}`;
    }
    len = Number(lenText);
  }
  if (hasHostBits(parsed.addr, len)) {
    return `"${text}" has host bits set beyond /${len}`;
  }
  return { family: parsed.family, addr: parsed.addr, len, text };
}
