// The parsed rules file and the query the matcher answers. Rules are kept
// close to what the user wrote (lists, ranges); the matcher compiles them.

export type Action = 'accept' | 'drop' | 'reject';
export type Family = 4 | 6;

/** An address prefix; host bits beyond `len` are zero. */
export interface Prefix {
  family: Family;
  /** 16 bytes, network order; IPv4 in the first 4, the rest zero. */
  addr: Uint8Array;
  len: number;
  /** As written in the rules file. */
  text: string;
}

/** Inclusive port range; a single port has lo === hi. */
export interface PortRange {
  lo: number;
  hi: number;
}

export interface Rule {
  /** 1-based position among the file's rules; the data plane stores it per entry. */
  id: number;
  /** First line of the rule in its file. */
  line: number;
  action: Action;
  /** IP protocol number; undefined = any. */
  proto?: number;
  /**
   * Families the rule can match: the intersection of `family`, the
   * protocol's family (icmp: 4, icmpv6: 6) and the families present in each
   * given address list. Never empty (that is a parse error).
   */
  families: readonly Family[];
  /** undefined = any. */
  src?: readonly Prefix[];
  dst?: readonly Prefix[];
  sport?: readonly PortRange[];
  dport?: readonly PortRange[];
  /** ICMP or ICMPv6 type number (names resolved by protocol). */
  icmpType?: number;
  iif?: readonly string[];
  zone?: readonly string[];
  helper?: 'ftp';
  log: boolean;
  comment?: string;
  /** The rule's text, continuation lines joined, comments removed. */
  source: string;
}

export interface RuleSet {
  file: string;
  rules: readonly Rule[];
}

/**
 * What the matcher needs to know about a new flow. Callers reuse one object
 * (and its address buffers) for every query, so matching allocates nothing.
 */
export interface FlowQuery {
  family: Family;
  proto: number;
  /** 16 bytes; IPv4 in the first 4. */
  src: Uint8Array;
  dst: Uint8Array;
  sport: number;
  dport: number;
  /** ICMP/ICMPv6 type; -1 if the packet is not ICMP. */
  icmpType: number;
  iif: string;
  zone: string;
}

export interface Matcher {
  /** The first rule that matches; undefined means the implicit final drop. */
  match(q: FlowQuery): Rule | undefined;
}
