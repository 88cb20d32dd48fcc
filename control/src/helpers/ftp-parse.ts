// Strict parsing of the FTP commands and replies that open a data
// connection: PORT and EPRT from the client (active mode), 227 and 229 from
// the server (passive mode). The result names the data connection the
// firewall must expect, or why the line was refused. Nothing here trusts the
// peer: an address that is not the control connection's own endpoint (a
// PORT naming a third host, the classic bounce attack), a privileged port, a
// line without its terminator or an oversized one all create nothing.
import { isIPv4, isIPv6 } from 'node:net';
import { addressBytes } from '../net/address.js';

/** Longest command/reply line accepted (RFC 959 lines are short; real ones < 100 bytes). */
export const FTP_MAX_LINE = 512;
/** Lowest data port accepted: privileged ports are refused (FTP bounce to system services). */
export const FTP_MIN_DATA_PORT = 1024;

export interface FtpEndpoints {
  family: 4 | 6;
  /** The control connection's client and server addresses (4 or 16 bytes). */
  client: Uint8Array;
  server: Uint8Array;
}

/** The data connection to expect: from `from` (any source port) to to:port. */
export interface FtpExpectation {
  mode: 'active' | 'passive';
  from: Uint8Array;
  to: Uint8Array;
  port: number;
}

export type FtpRefusal = 'truncated' | 'oversized' | 'malformed' | 'address-mismatch' | 'family-mismatch' | 'privileged-port';

export type FtpParseResult =
  | { kind: 'none' }
  | { kind: 'expect'; expectation: FtpExpectation }
  | { kind: 'refused'; reason: FtpRefusal };

const NONE: FtpParseResult = { kind: 'none' };
const refused = (reason: FtpRefusal): FtpParseResult => ({ kind: 'refused', reason });

/**
 * Parses one TCP payload of an FTP control connection. fromClient: the
 * payload travels from the control connection's client to its server.
 */
export function parseFtpPayload(payload: Uint8Array, fromClient: boolean, ends: FtpEndpoints): FtpParseResult {
  const verb = leadingWord(payload);
  const wanted = fromClient ? verb === 'PORT' || verb === 'EPRT' : verb === '227' || verb === '229';
  if (!wanted) return NONE;
  const end = lineEnd(payload);
  if (end < 0) return refused(payload.length > FTP_MAX_LINE ? 'oversized' : 'truncated');
  if (end > FTP_MAX_LINE) return refused('oversized');
  const line = String.fromCharCode(...payload.subarray(0, end));
  const args = line.slice(verb.length + 1);
  switch (verb) {
    case 'PORT':
      return fromHostPort(parseHostPort(args.trim()), 'active', ends);
    case '227':
      return fromHostPort(parseHostPort(passiveNumbers(args)), 'passive', ends);
    case 'EPRT':
      return fromEprt(args.trim(), ends);
    default:
      return fromEpsv(args, ends);
  }
}

/** A leading 4-letter command or 3-digit reply code followed by a space, upper-cased; '' otherwise. */
function leadingWord(p: Uint8Array): string {
  const len = p[3] === 0x20 ? 3 : p[4] === 0x20 ? 4 : 0;
  if (len === 0 || p.length <= len) return '';
  return String.fromCharCode(...p.subarray(0, len)).toUpperCase();
}

/** Index of the line terminator (\r\n or \n), -1 if the payload holds no whole line. */
function lineEnd(p: Uint8Array): number {
  const limit = Math.min(p.length, FTP_MAX_LINE + 2);
  for (let i = 0; i < limit; i++) if (p[i] === 0x0a) return i > 0 && p[i - 1] === 0x0d ? i - 1 : i;
  return -1;
}

/** 227 replies put h1,h2,h3,h4,p1,p2 somewhere in the text, usually in parentheses. */
function passiveNumbers(text: string): string {
  const m = /(\d{1,3}(?:,\d{1,3}){5})/.exec(text);
  return m ? m[1]! : '';
}

function parseHostPort(text: string): { addr: Uint8Array; port: number } | undefined {
  if (!/^\d{1,3}(,\d{1,3}){5}$/.test(text)) return undefined;
  const n = text.split(',').map(Number);
  if (n.some((v) => v > 255)) return undefined;
  return { addr: Uint8Array.from(n.slice(0, 4)), port: n[4]! * 256 + n[5]! };
}

function fromHostPort(hp: { addr: Uint8Array; port: number } | undefined, mode: 'active' | 'passive', ends: FtpEndpoints): FtpParseResult {
  if (!hp) return refused('malformed');
  if (ends.family !== 4) return refused('family-mismatch');
  return expectation(mode, hp.addr, hp.port, ends);
}

/** EPRT |af|address|port| (RFC 2428); the delimiter is the first character. */
function fromEprt(text: string, ends: FtpEndpoints): FtpParseResult {
  const d = text[0];
  if (!d || d.charCodeAt(0) < 33 || d.charCodeAt(0) > 126) return refused('malformed');
  const fields = text.split(d);
  if (fields.length !== 5 || fields[0] !== '' || fields[4] !== '') return refused('malformed');
  const [, af, addrText = '', portText = ''] = fields;
  if (af !== '1' && af !== '2') return refused('malformed');
  if ((af === '1' ? 4 : 6) !== ends.family) return refused('family-mismatch');
  const addr = parseEprtAddress(addrText, ends.family);
  const port = parsePort(portText);
  if (!addr || port === undefined) return refused('malformed');
  return expectation('active', addr, port, ends);
}

/** 229 Entering Extended Passive Mode (|||port|): only the port; the address is the server's. */
function fromEpsv(text: string, ends: FtpEndpoints): FtpParseResult {
  const m = /\((.)\1\1(\d{1,5})\1\)/.exec(text);
  const port = m ? parsePort(m[2]!) : undefined;
  if (port === undefined) return refused('malformed');
  return expectation('passive', ends.server, port, ends);
}

function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

function parseEprtAddress(text: string, family: 4 | 6): Uint8Array | undefined {
  const valid = family === 4 ? isIPv4(text) : isIPv6(text) && !text.includes('%') && !text.includes('.');
  return valid ? addressBytes(text) : undefined;
}

function expectation(mode: 'active' | 'passive', addr: Uint8Array, port: number, ends: FtpEndpoints): FtpParseResult {
  // Active: the server connects back to the client, which must name itself.
  // Passive: the client connects to the server, which must name itself.
  const owner = mode === 'active' ? ends.client : ends.server;
  if (!sameBytes(addr, owner)) return refused('address-mismatch');
  if (port < FTP_MIN_DATA_PORT) return refused('privileged-port');
  const from = mode === 'active' ? ends.server : ends.client;
  return { kind: 'expect', expectation: { mode, from, to: owner, port } };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
