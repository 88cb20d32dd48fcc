// Address and prefix parsing for the rules file. Addresses become 16-byte
// network-order buffers (IPv4 in the first 4 bytes) so the matcher treats
// both families alike.

import { isIPv4, isIPv6 } from 'node:net';
import type { Family, Prefix } from './types.js';

/** Parses a dotted-quad or IPv6 address; undefined if it is neither. */
export function parseAddress(text: string): { family: Family; addr: Uint8Array } | undefined {
  if (isIPv4(text)) {
    const addr = new Uint8Array(16);
    text.split('.').forEach((part, i) => { addr[i] = Number(part); });
    return { family: 4, addr };
  }
  if (isIPv6(text) && !text.includes('%')) return { family: 6, addr: parseIPv6(text) };
  return undefined;
}

// node:net has already validated the text, so this only has to place groups.
function parseIPv6(text: string): Uint8Array {
  const groups = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const [a = 0, b = 0, c = 0, d = 0] = g.split('.').map(Number);
        out.push((a << 8) | b, (c << 8) | d);
      } else {
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const [head = '', tail] = text.split('::');
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const addr = new Uint8Array(16);
  all.forEach((g, i) => { addr[2 * i] = g >> 8; addr[2 * i + 1] = g & 0xff; });
  return addr;
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
