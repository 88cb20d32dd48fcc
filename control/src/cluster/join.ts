// A joining node's state transfer (trigger c): it asks every active peer
// for common state and the buckets it will own or back up, and is done when
// every peer asked has sent its last bulk chunk.
//
// A peer that fails before its answer is complete leaves the transfer
// short. On a loaded machine that failure is often false (the peer's or our
// own event loop stalled past the failure timeout) and the peer is back a
// moment later with all its state; going active without it would make this
// node own buckets with an empty table (in standby mode: all of them). So
// the transfer waits a grace period for the failed peers to come back and
// asks again. If they do not, their buckets have moved to the surviving
// peers (their backups), and those are asked again instead. Only when no
// peer is active any more, or after a few rounds, does the node go active
// with what it has: then it is the best state left in the cluster.

/** How one round of requests ended. */
type RoundOutcome = { kind: 'answered' } | { kind: 'stalled' } | { kind: 'peers-failed'; peers: number[] };

export interface JoinOutcome {
  /** Every asked peer sent its whole answer in the last round. */
  complete: boolean;
  rounds: number;
  /** Why the transfer ended incomplete. */
  reason?: 'stalled' | 'no active peer' | 'too many rounds';
}

export interface JoinDeps {
  activePeers(): number[];
  /** Sends a state request for what this node will serve under the current membership. */
  request(peer: number, requestId: number): void;
  nextRequestId(): number;
  /** A round ends as stalled after this long without a bulk chunk. */
  stallMs: number;
  /** How long a round that lost an answering peer waits for it to come back. */
  returnGraceMs: number;
  maxRounds: number;
}

interface Wait {
  peer: number;
  done(answered: boolean): void;
}

export class JoinTransfer {
  private readonly d: JoinDeps;
  /** requestId → the peer asked and the round's completion for it. */
  private readonly waits = new Map<number, Wait>();
  /** When the last bulk chunk arrived (performance.now()). */
  private progressAt = 0;
  /** Wakes a grace wait when a peer becomes active. */
  private wakeOnActive: (() => void) | undefined;
  private stopped = false;

  constructor(deps: JoinDeps) {
    this.d = deps;
  }

  /** Runs the transfer until complete or given up. */
  async run(): Promise<JoinOutcome> {
    let peers = this.d.activePeers();
    if (peers.length === 0) return { complete: true, rounds: 0 };
    for (let round = 1; ; round++) {
      const outcome = await this.askRound(peers);
      if (this.stopped || outcome.kind === 'answered') return { complete: true, rounds: round };
      if (outcome.kind === 'stalled') return { complete: false, rounds: round, reason: 'stalled' };
      if (round === this.d.maxRounds) return { complete: false, rounds: round, reason: 'too many rounds' };
      peers = await this.peersToAskAgain(outcome.peers);
      if (peers.length === 0) return { complete: false, rounds: round, reason: 'no active peer' };
    }
  }

  /** A bulk chunk arrived; true if it answers one of this transfer's requests (then install it). */
  onBulk(from: number, requestId: number, last: boolean): boolean {
    const wait = this.waits.get(requestId);
    if (!wait || wait.peer !== from) return false;
    this.progressAt = performance.now();
    if (last) {
      this.waits.delete(requestId);
      wait.done(true);
    }
    return true;
  }

  /** A peer failed: its outstanding answers will not come. */
  onPeerFailed(peer: number): void {
    for (const [requestId, wait] of this.waits) {
      if (wait.peer !== peer) continue;
      this.waits.delete(requestId);
      wait.done(false);
    }
  }

  /** A peer became active: a grace wait may be over. */
  onPeerActive(): void {
    this.wakeOnActive?.();
  }

  /** Ends the transfer at once (the node stops). */
  stop(): void {
    this.stopped = true;
    for (const wait of this.waits.values()) wait.done(true);
    this.waits.clear();
    this.wakeOnActive?.();
  }

  /** Peers still waited for (for the log). */
  waitingFor(): number[] {
    return [...this.waits.values()].map((w) => w.peer);
  }

  private async askRound(peers: readonly number[]): Promise<RoundOutcome> {
    const failed: number[] = [];
    const answers = peers.map((peer) => {
      const requestId = this.d.nextRequestId();
      const answered = new Promise<void>((resolve) =>
        this.waits.set(requestId, {
          peer,
          done: (ok) => {
            if (!ok) failed.push(peer);
            resolve();
          },
        }),
      );
      this.d.request(peer, requestId);
      return answered;
    });
    const stalled = await this.completeOrStalled(Promise.all(answers));
    if (stalled) {
      this.waits.clear();
      return { kind: 'stalled' };
    }
    return failed.length === 0 ? { kind: 'answered' } : { kind: 'peers-failed', peers: failed };
  }

  /** True if no bulk chunk arrived for stallMs before `answers` resolved. */
  private async completeOrStalled(answers: Promise<unknown>): Promise<boolean> {
    let complete = false;
    void answers.then(() => (complete = true));
    this.progressAt = performance.now();
    while (!complete && !this.stopped) {
      const left = this.progressAt + this.d.stallMs - performance.now();
      if (left <= 0) return true;
      await this.raceTimer(answers, left);
    }
    return false;
  }

  /**
   * After answering peers failed: if they all come back within the grace
   * period (a false failure), only they are asked again; otherwise every
   * active peer is, since the failed peers' buckets now have new owners.
   */
  private async peersToAskAgain(failed: readonly number[]): Promise<number[]> {
    const until = performance.now() + this.d.returnGraceMs;
    const allBack = (): boolean => failed.every((p) => this.d.activePeers().includes(p));
    while (!this.stopped && !allBack()) {
      const left = until - performance.now();
      if (left <= 0) break;
      await this.raceTimer(new Promise<void>((resolve) => (this.wakeOnActive = resolve)), left);
      this.wakeOnActive = undefined;
    }
    if (this.stopped) return [];
    return allBack() ? [...failed] : this.d.activePeers();
  }

  private async raceTimer(p: Promise<unknown>, ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([p, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
  }
}
