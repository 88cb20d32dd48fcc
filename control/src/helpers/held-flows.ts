// Packets held in the controller while a helper's expectation reaches the
// cluster. Per flow, a queue in arrival order: a command carries a gate (the
// wait for the peers' acks, bounded by the hold timeout); packets behind it
// wait for it. The queue is re-injected from its head as gates open, through
// xdp_syncwall_release (which tracks and forwards without punting again);
// when it is empty the flow's FLOW_F_HELD is cleared and the data plane
// forwards it again. A packet of a flow not held here (punted between the
// re-injection of the queue and the flag's clearing, or a stale flag) goes
// out at once: order among punted packets is kept.
import type { Logger } from '../log.js';
import type { HelperStats } from './helper-stats.js';
import type { LatencyHistogram } from '../stats/latency-histogram.js';

export interface HeldFlowsDeps {
  /** Re-injects a frame through xdp_syncwall_release. */
  release(frame: Uint8Array, ifindex: number): void;
  /** Clears the flow's FLOW_F_HELD (key: struct flow_key bytes) once nothing of it is held. */
  unhold(key: Uint8Array): void;
  stats: HelperStats;
  log: Logger;
  monotonicNs(): bigint;
  histogram: LatencyHistogram;
  /** Frames held at once over all flows; more are dropped (TCP sends them again). */
  maxFrames: number;
}

interface Gate {
  open: boolean;
}

interface HeldPacket {
  frame: Uint8Array;
  ifindex: number;
  /** When the data plane punted it (CLOCK_MONOTONIC ns). */
  tsNs: bigint;
  gate: Gate | null;
}

interface HeldFlow {
  key: Uint8Array;
  queue: HeldPacket[];
}

export class HeldFlows {
  private readonly d: HeldFlowsDeps;
  private readonly flows = new Map<string, HeldFlow>();
  private frames = 0;

  constructor(deps: HeldFlowsDeps) {
    this.d = deps;
  }

  /** Frames held now. */
  get heldFrames(): number {
    return this.frames;
  }

  /**
   * Queues a punted packet of flow `id` (key: its struct flow_key, copied).
   * `acked` is the command's wait (true: acked, false: timed out); null for
   * a packet that waits for nothing but what is ahead of it.
   */
  push(id: string, key: Uint8Array, frame: Uint8Array, ifindex: number, tsNs: bigint, acked: Promise<boolean> | null): void {
    const { stats } = this.d;
    if (this.frames >= this.d.maxFrames) {
      stats.add('helper_held_full');
      return;
    }
    let flow = this.flows.get(id);
    if (!flow) this.flows.set(id, (flow = { key: key.slice(), queue: [] }));
    else stats.add('helper_held_behind');
    const gate = acked ? { open: false } : null;
    flow.queue.push({ frame, ifindex, tsNs, gate });
    this.frames++;
    if (acked && gate) {
      stats.add('helper_held');
      acked.then(
        (ok) => stats.add(ok ? 'helper_released_on_ack' : 'helper_released_on_timeout'),
        (err: unknown) => {
          stats.add('helper_released_on_timeout');
          this.d.log.warn({ err }, 'waiting for expectation acks failed; releasing the held packet');
        },
      ).finally(() => {
        gate.open = true;
        this.pump(id);
      });
    }
    this.pump(id);
  }

  /** Releases everything held (shutdown): better late than lost. */
  releaseAll(): void {
    for (const [id, flow] of [...this.flows]) {
      for (const p of flow.queue) if (p.gate) p.gate.open = true;
      this.pump(id);
    }
  }

  /** Re-injects the flow's queue up to the first closed gate; unholds the flow when the queue is empty. */
  private pump(id: string): void {
    const flow = this.flows.get(id);
    if (!flow) return;
    const { stats } = this.d;
    for (let p = flow.queue[0]; p && (!p.gate || p.gate.open); p = flow.queue[0]) {
      flow.queue.shift();
      this.frames--;
      try {
        this.d.release(p.frame, p.ifindex);
        stats.add('helper_released');
      } catch (err) {
        stats.add('helper_release_errors');
        this.d.log.warn({ err }, 're-injecting a released helper packet failed');
      }
      if (p.gate) this.d.histogram.record(Number(this.d.monotonicNs() - p.tsNs) / 1000);
    }
    if (flow.queue.length > 0) return;
    this.flows.delete(id);
    this.d.unhold(flow.key);
  }
}
