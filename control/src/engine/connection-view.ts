// Turns raw table entries into the management API's ConnView and evaluates
// connection filters (conns list / conns flush) against raw entries, so a
// filtered listing decodes only the entries it returns.
import type { ConnFilter, ConnView } from '../api/backend.js';
import { FLOW_KEY_SIZE, flowEntry, flowKey } from '../bpf/codec.js';
import { FlowFlag, FlowState, HelperId } from '../gen/layout.js';
import { formatAddress } from '../net/address.js';
import { parsePrefix } from '../rules/addr.js';
import type { Prefix } from '../rules/types.js';

const STATE_NAMES: Record<number, string> = {
  [FlowState.FS_NONE]: 'new',
  [FlowState.FS_SYN_SENT]: 'syn_sent',
  [FlowState.FS_SYN_RECV]: 'syn_recv',
  [FlowState.FS_ESTABLISHED]: 'established',
  [FlowState.FS_FIN_WAIT]: 'fin_wait',
  [FlowState.FS_CLOSE_WAIT]: 'close_wait',
  [FlowState.FS_LAST_ACK]: 'last_ack',
  [FlowState.FS_TIME_WAIT]: 'time_wait',
  [FlowState.FS_CLOSE]: 'close',
  [FlowState.FS_SYN_SENT2]: 'syn_sent2',
  [FlowState.FS_UNREPLIED]: 'unreplied',
  [FlowState.FS_REPLIED]: 'replied',
};

export const STATE_NAME_LIST: readonly string[] = Object.values(STATE_NAMES);

export function stateName(state: number): string {
  return STATE_NAMES[state] ?? `state_${state}`;
}

const FLAG_NAMES: [number, string][] = [
  [FlowFlag.FLOW_F_RELATED, 'related'],
  [FlowFlag.FLOW_F_COMMON, 'common'],
  [FlowFlag.FLOW_F_REMOTE, 'remote'],
  [FlowFlag.FLOW_F_HELD, 'held'],
];

const HELPER_NAMES: Record<number, string> = { [HelperId.HELPER_NONE]: '', [HelperId.HELPER_FTP]: 'ftp' };

/** A ConnFilter prepared once per request. */
export class CompiledFilter {
  private readonly f: ConnFilter;
  private readonly prefix: Prefix | undefined;

  /** The API layer has validated the filter; an invalid prefix here is a bug. */
  constructor(filter: ConnFilter) {
    this.f = filter;
    const prefix = filter.addr === undefined ? undefined : parsePrefix(filter.addr);
    if (typeof prefix === 'string') throw new TypeError(prefix);
    this.prefix = prefix;
  }

  matches(keys: Uint8Array, kOff: number, values: Uint8Array, vOff: number): boolean {
    const f = this.f;
    const family = flowKey.family(keys, kOff);
    if (f.family !== undefined && f.family !== family) return false;
    if (f.proto !== undefined && f.proto !== flowKey.proto(keys, kOff)) return false;
    if (f.port !== undefined && f.port !== flowKey.portA(keys, kOff) && f.port !== flowKey.portB(keys, kOff)) return false;
    if (f.state !== undefined && f.state !== stateName(flowEntry.state(values, vOff))) return false;
    if (this.prefix) {
      const p = this.prefix;
      if (p.family !== family) return false;
      if (!inPrefix(keys, flowKey.addrAOffset(kOff), p) && !inPrefix(keys, flowKey.addrBOffset(kOff), p)) return false;
    }
    return true;
  }
}

function inPrefix(buf: Uint8Array, off: number, p: { addr: Uint8Array; len: number }): boolean {
  let bits = p.len;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((buf[off + i]! & mask) !== (p.addr[i]! & mask)) return false;
  }
  return true;
}

export function toConnView(keys: Uint8Array, kOff: number, values: Uint8Array, vOff: number, nowNs: bigint): ConnView {
  const key = flowKey.read(keys.subarray(kOff, kOff + FLOW_KEY_SIZE), 0);
  const e = flowEntry.decode(values, vOff);
  const origIsA = (e.flags & FlowFlag.FLOW_F_ORIG_A) !== 0;
  const family = key.family === 6 ? 6 : 4;
  return {
    family,
    proto: key.proto,
    src: formatAddress(origIsA ? key.addrA : key.addrB),
    sport: origIsA ? key.portA : key.portB,
    dst: formatAddress(origIsA ? key.addrB : key.addrA),
    dport: origIsA ? key.portB : key.portA,
    state: stateName(e.state),
    flags: FLAG_NAMES.filter(([bit]) => (e.flags & bit) !== 0).map(([, name]) => name),
    ruleId: e.ruleId,
    helper: HELPER_NAMES[e.helper] ?? `helper_${e.helper}`,
    ownerNode: e.ownerNode,
    version: e.version,
    ageMs: Number((nowNs - e.createdNs) / 1_000_000n),
    idleMs: Number((nowNs - e.lastSeenNs) / 1_000_000n),
    packetsOrig: e.packets[0],
    bytesOrig: e.bytes[0],
    packetsReply: e.packets[1],
    bytesReply: e.bytes[1],
  };
}
