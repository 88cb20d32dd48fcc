// Idle timeouts per flow state, conntrack-like. The expiry sweeper asks this
// table how long an entry may stay idle before it is removed.
import { FlowState } from '../gen/layout.js';
import { IPPROTO_TCP, IPPROTO_UDP, isIcmp } from '../net/protocols.js';

export interface TimeoutSettings {
  /** Seconds, keyed as in the config file's `timeouts` section. */
  tcpSynSent: number;
  tcpSynRecv: number;
  tcpEstablished: number;
  tcpFinWait: number;
  tcpCloseWait: number;
  tcpLastAck: number;
  tcpTimeWait: number;
  tcpClose: number;
  udpUnreplied: number;
  udpReplied: number;
  icmp: number;
  genericUnreplied: number;
  genericReplied: number;
}


/** Timeout lookup in nanoseconds, as doubles (exact far beyond any timeout). */
export class TimeoutTable {
  private readonly tcp: Float64Array;
  private readonly udp: Float64Array;
  private readonly icmp: Float64Array;
  private readonly generic: Float64Array;

  constructor(t: TimeoutSettings) {
    const ns = (s: number): number => s * 1e9;
    this.tcp = new Float64Array(FlowState.FS_MAX);
    // A blank entry whose first packet never made it through: as short as a SYN would live.
    this.tcp[FlowState.FS_NONE] = ns(t.tcpSynSent);
    this.tcp[FlowState.FS_SYN_SENT] = ns(t.tcpSynSent);
    this.tcp[FlowState.FS_SYN_SENT2] = ns(t.tcpSynSent);
    this.tcp[FlowState.FS_SYN_RECV] = ns(t.tcpSynRecv);
    this.tcp[FlowState.FS_ESTABLISHED] = ns(t.tcpEstablished);
    this.tcp[FlowState.FS_FIN_WAIT] = ns(t.tcpFinWait);
    this.tcp[FlowState.FS_CLOSE_WAIT] = ns(t.tcpCloseWait);
    this.tcp[FlowState.FS_LAST_ACK] = ns(t.tcpLastAck);
    this.tcp[FlowState.FS_TIME_WAIT] = ns(t.tcpTimeWait);
    this.tcp[FlowState.FS_CLOSE] = ns(t.tcpClose);
    this.udp = unrepliedReplied(ns(t.udpUnreplied), ns(t.udpReplied));
    this.icmp = unrepliedReplied(ns(t.icmp), ns(t.icmp));
    this.generic = unrepliedReplied(ns(t.genericUnreplied), ns(t.genericReplied));
  }

  /** Idle nanoseconds after which an entry of this protocol and state expires. */
  timeoutNs(proto: number, state: number): number {
    const table =
      proto === IPPROTO_TCP ? this.tcp
      : proto === IPPROTO_UDP ? this.udp
      : isIcmp(proto) ? this.icmp
      : this.generic;
    return table[state] ?? this.generic[FlowState.FS_UNREPLIED]!;
  }
}

function unrepliedReplied(unreplied: number, replied: number): Float64Array {
  const t = new Float64Array(FlowState.FS_MAX);
  t[FlowState.FS_NONE] = unreplied;
  t[FlowState.FS_UNREPLIED] = unreplied;
  t[FlowState.FS_REPLIED] = replied;
  return t;
}
