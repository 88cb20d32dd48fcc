// The first-packet pipeline: a punted packet (no entry, may open a flow) is
// decided against the rule set; accepted flows get a blank entry and their
// packet is re-injected, rejected ones get a RST or ICMP unreachable. A
// packet a protocol helper expects (an FTP data connection) is admitted as
// related before any rule is consulted.
//
// Work is batched per ring-buffer wakeup: decisions are made record by
// record (the record is only valid during the callback, so accepted frames
// are copied into a preallocated arena), then flush() inserts all new entries
// with one batch map update and re-injects the frames in arrival order. The
// entry must exist before its packet is re-injected, or the program would
// punt it again.
import { flowKey, puntMeta } from '../bpf/codec.js';
import type { ConnTable } from '../bpf/conn-table.js';
import type { FrameInjector } from '../bpf/inject.js';
import { FlowFlag, HelperId, SW_PUNT_DATA_MAX } from '../gen/layout.js';
import type { Logger } from '../log.js';
import { LatencyHistogram } from '../stats/latency-histogram.js';
import { formatAddress } from '../net/address.js';
import { protocolName } from '../net/protocols.js';
import type { FlowQuery, Rule } from '../rules/types.js';
import { fillFlowQuery, newFlowQuery, type IngressInterface } from './flow-query.js';
import type { ControllerStats } from './controller-stats.js';
import type { RejectSender } from './reject.js';
import type { RulesHolder } from './rules-holder.js';


export interface FirstPacketDeps {
  table: ConnTable;
  injector: FrameInjector;
  rejects: RejectSender;
  rules: RulesHolder;
  interfaces: ReadonlyMap<number, IngressInterface>;
  stats: ControllerStats;
  log: Logger;
  nodeId: number;
  /** Punts older than this (queued while no daemon ran) are dropped, not replayed. */
  maxPuntAgeNs: bigint;
  /** Frames held for re-injection per flush; sized like the ring consumer's budget. */
  batchCapacity: number;
  monotonicNs: () => bigint;
  /** Helper expectations: true if the first packet (key at buf[keyOff]) fulfils one, which is then used up. */
  related?: { takeRelated(buf: Uint8Array, keyOff: number, srcIsA: boolean): boolean };
}

export class FirstPacketPipeline {
  private readonly d: FirstPacketDeps;
  private readonly query: FlowQuery;
  private readonly arena: Uint8Array;
  private readonly frameLen: Uint32Array;
  private readonly frameIfindex: Uint32Array;
  /** When the data plane punted each pending frame (ns, CLOCK_MONOTONIC). */
  private readonly frameTsNs: Float64Array;
  private pending = 0;
  /** From the punt in XDP to the re-injection of the accepted frame. */
  readonly latency = new LatencyHistogram();

  constructor(deps: FirstPacketDeps) {
    this.d = deps;
    this.query = newFlowQuery();
    this.arena = new Uint8Array(deps.batchCapacity * SW_PUNT_DATA_MAX);
    this.frameLen = new Uint32Array(deps.batchCapacity);
    this.frameIfindex = new Uint32Array(deps.batchCapacity);
    this.frameTsNs = new Float64Array(deps.batchCapacity);
  }

  /** Decides one punt record (buf[off..] is valid only during this call). */
  onPunt(buf: Uint8Array, off: number): void {
    const { stats } = this.d;
    stats.add('punts_received');
    const ifindex = puntMeta.ifindex(buf, off);
    if (this.d.monotonicNs() - puntMeta.tsNs(buf, off) > this.d.maxPuntAgeNs) {
      stats.add('punts_stale');
      return;
    }
    const iface = this.d.interfaces.get(ifindex);
    if (!iface) {
      stats.add('punts_no_interface');
      return;
    }
    const srcIsA = puntMeta.srcIsA(buf, off);
    const keyOff = puntMeta.keyOffset(off);
    if (this.d.related?.takeRelated(buf, keyOff, srcIsA)) {
      stats.add('punts_accepted');
      this.admit(buf, off, srcIsA, FlowFlag.FLOW_F_RELATED, 0, HelperId.HELPER_NONE);
      return;
    }
    fillFlowQuery(this.query, buf, keyOff, srcIsA, puntMeta.icmpType(buf, off), iface);
    const rule = this.d.rules.current().matcher.match(this.query);
    if (rule?.log) this.logDecision(rule, buf, keyOff, srcIsA, iface);
    if (!rule || rule.action === 'drop') {
      stats.add('punts_dropped');
      return;
    }
    const frameOff = puntMeta.dataOffset(off);
    const capLen = puntMeta.capLen(buf, off);
    if (rule.action === 'reject') {
      stats.add('punts_rejected');
      this.d.rejects.send(buf.subarray(frameOff, frameOff + capLen), puntMeta.l3Off(buf, off), puntMeta.l4Off(buf, off), ifindex);
      return;
    }
    stats.add('punts_accepted');
    this.admit(buf, off, srcIsA, 0, rule.id, rule.helper === 'ftp' ? HelperId.HELPER_FTP : HelperId.HELPER_NONE);
  }

  /** Queues the punted flow's blank entry and its frame for the next flush. */
  private admit(buf: Uint8Array, off: number, srcIsA: boolean, flags: number, ruleId: number, helper: number): void {
    if (this.pending === this.d.batchCapacity) this.flush();
    const slot = this.pending++;
    const frameOff = puntMeta.dataOffset(off);
    const capLen = puntMeta.capLen(buf, off);
    const ifindex = puntMeta.ifindex(buf, off);
    this.arena.set(buf.subarray(frameOff, frameOff + capLen), slot * SW_PUNT_DATA_MAX);
    this.frameLen[slot] = capLen;
    this.frameIfindex[slot] = ifindex;
    this.frameTsNs[slot] = Number(puntMeta.tsNs(buf, off));
    this.d.table.queueInsert(buf, puntMeta.keyOffset(off), {
      flags: flags | (srcIsA ? FlowFlag.FLOW_F_ORIG_A : 0),
      ruleId,
      helper,
      ownerNode: this.d.nodeId,
      origIfindex: ifindex,
      createdNs: this.d.monotonicNs(),
    });
  }

  /** Inserts the queued entries, then re-injects their first packets. */
  flush(): void {
    if (this.pending === 0) return;
    const { stats, log } = this.d;
    const failed = this.d.table.flushInserts();
    for (let slot = 0; slot < this.pending; slot++) {
      const err = failed.get(slot);
      if (err) {
        stats.add(err.code === 'E2BIG' || err.code === 'ENOMEM' ? 'table_full' : 'insert_errors');
        continue;
      }
      const start = slot * SW_PUNT_DATA_MAX;
      try {
        this.d.injector.reinject(this.arena.subarray(start, start + this.frameLen[slot]!), this.frameIfindex[slot]!);
        stats.add('reinjected');
        this.latency.record((Number(this.d.monotonicNs()) - this.frameTsNs[slot]!) / 1000);
      } catch (e) {
        stats.add('reinject_errors');
        log.warn({ err: e }, 're-injecting a first packet failed');
      }
    }
    this.pending = 0;
  }

  private logDecision(rule: Rule, buf: Uint8Array, keyOff: number, srcIsA: boolean, iface: IngressInterface): void {
    const key = flowKey.read(buf, keyOff);
    this.d.log.info(
      {
        rule: rule.id,
        line: rule.line,
        action: rule.action,
        iif: iface.name,
        proto: protocolName(key.proto),
        src: formatAddress(srcIsA ? key.addrA : key.addrB),
        sport: srcIsA ? key.portA : key.portB,
        dst: formatAddress(srcIsA ? key.addrB : key.addrA),
        dport: srcIsA ? key.portB : key.portA,
      },
      'first packet',
    );
  }
}
