// Who is in the cluster right now, as this node sees it: its own state and
// each peer's announced state and incarnation (from the transport's
// peerState events and handover messages). The members are the nodes that
// forward traffic and therefore own buckets: active nodes, and draining
// nodes until they hand their buckets over. Joining and failed nodes own
// nothing. Every node derives ownership from this set alone.
import type { NodeState } from './types.js';

interface PeerStatus {
  state: NodeState | 'unknown';
  incarnation: string;
  /** The peer drained and handed its buckets over (until it restarts). */
  handedOver: boolean;
}

export interface PeerChange {
  /** The member set may differ: recompute ownership. */
  membersChanged: boolean;
  /** A new incarnation of a known peer: it restarted and lost its replicas. */
  restarted: boolean;
}

export class Membership {
  readonly selfId: number;
  private selfState: NodeState = 'joining';
  private selfHandedOver = false;
  private readonly peerStatus = new Map<number, PeerStatus>();

  constructor(selfId: number, peerIds: readonly number[]) {
    this.selfId = selfId;
    for (const id of peerIds) this.peerStatus.set(id, { state: 'unknown', incarnation: '', handedOver: false });
  }

  get state(): NodeState {
    return this.selfState;
  }

  /** Sets this node's state; returns whether the member set changed. */
  setSelfState(state: NodeState): boolean {
    const before = this.membersKey();
    this.selfState = state;
    return this.membersKey() !== before;
  }

  /** This node handed its buckets over at the end of a drain; returns whether the member set changed. */
  selfHandOver(): boolean {
    const before = this.membersKey();
    this.selfHandedOver = true;
    return this.membersKey() !== before;
  }

  /** A peer announced a state (hello, heartbeat) or timed out ('failed'). Unknown ids are ignored. */
  peerState(id: number, state: NodeState, incarnation: string): PeerChange {
    const p = this.peerStatus.get(id);
    if (!p) return { membersChanged: false, restarted: false };
    const before = this.membersKey();
    // A failure report carries the incarnation that failed; only a new one in a live state is a restart.
    const restarted = p.incarnation !== '' && incarnation !== '' && incarnation !== p.incarnation;
    if (restarted || p.incarnation === '') p.handedOver = false;
    if (incarnation !== '') p.incarnation = incarnation;
    p.state = state;
    return { membersChanged: this.membersKey() !== before, restarted };
  }

  /** A peer handed its buckets over (drain); returns whether the member set changed. */
  peerHandedOver(id: number): boolean {
    const p = this.peerStatus.get(id);
    if (!p) return false;
    const before = this.membersKey();
    p.handedOver = true;
    return this.membersKey() !== before;
  }

  /** Node ids that own buckets now, ascending. */
  members(): number[] {
    const out: number[] = [];
    if (isMember(this.selfState, this.selfHandedOver)) out.push(this.selfId);
    for (const [id, p] of this.peerStatus) if (p.state !== 'unknown' && isMember(p.state, p.handedOver)) out.push(id);
    return out.sort((a, b) => a - b);
  }

  /** The members a node would see once it is active itself: what a joining node asks state for. */
  membersWithSelf(): number[] {
    return [...new Set([...this.members(), this.selfId])].sort((a, b) => a - b);
  }

  /** The members without this node: the ownership a draining node hands over to. */
  membersWithoutSelf(): number[] {
    return this.members().filter((id) => id !== this.selfId);
  }

  /** Peers that are up (joining, active or draining): common state goes to all of them. */
  livePeers(): number[] {
    const out: number[] = [];
    for (const [id, p] of this.peerStatus) if (p.state === 'joining' || p.state === 'active' || p.state === 'draining') out.push(id);
    return out;
  }

  /** Peers that are active: a joining node asks them for state. */
  activePeers(): number[] {
    const out: number[] = [];
    for (const [id, p] of this.peerStatus) if (p.state === 'active') out.push(id);
    return out;
  }

  /** Every configured peer has announced a state (or been declared failed). */
  allPeersHeard(): boolean {
    for (const p of this.peerStatus.values()) if (p.state === 'unknown') return false;
    return true;
  }

  peerIds(): number[] {
    return [...this.peerStatus.keys()];
  }

  private membersKey(): string {
    return this.members().join(',');
  }
}

function isMember(state: NodeState | 'unknown', handedOver: boolean): boolean {
  return state === 'active' || (state === 'draining' && !handedOver);
}
