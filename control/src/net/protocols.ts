// IP protocol numbers and the names syncwall accepts for them (rules file,
// CLI filters and output): defined once so they cannot drift apart.
export const IPPROTO_HOPOPTS = 0;
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ROUTING = 43;
export const IPPROTO_FRAGMENT = 44;
export const IPPROTO_GRE = 47;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_NONE = 59;
export const IPPROTO_DSTOPTS = 60;

/** Protocol names, as written in rules and CLI filters. */
export const PROTOCOL_NAMES: Readonly<Record<string, number>> = {
  tcp: IPPROTO_TCP,
  udp: IPPROTO_UDP,
  icmp: IPPROTO_ICMP,
  icmpv6: IPPROTO_ICMPV6,
};

const BY_NUMBER = new Map(Object.entries(PROTOCOL_NAMES).map(([name, n]) => [n, name]));

/** A protocol name (any case) or number 0..255; undefined if it is neither. */
export function parseProtocol(text: string): number | undefined {
  const named = PROTOCOL_NAMES[text.toLowerCase()];
  if (named !== undefined) return named;
  if (!/^\d{1,3}$/.test(text) || Number(text) > 255) return undefined;
  return Number(text);
}

/** The protocol's name, or its number as text. */
export function protocolName(proto: number): string {
  return BY_NUMBER.get(proto) ?? String(proto);
}

export function isIcmp(proto: number): boolean {
  return proto === IPPROTO_ICMP || proto === IPPROTO_ICMPV6;
}
