// IP protocol names the CLI accepts and prints; the same names as the rules
// file uses.

const BY_NAME: Readonly<Record<string, number>> = { tcp: 6, udp: 17, icmp: 1, icmpv6: 58 };
const BY_NUMBER = new Map(Object.entries(BY_NAME).map(([name, n]) => [n, name]));

/** A protocol name or number 0..255; undefined if it is neither. */
export function parseProtocol(text: string): number | undefined {
  const named = BY_NAME[text.toLowerCase()];
  if (named !== undefined) return named;
  if (!/^\d{1,3}$/.test(text) || Number(text) > 255) return undefined;
  return Number(text);
}

export function protocolName(proto: number): string {
  return BY_NUMBER.get(proto) ?? String(proto);
}

export const protocolNames = Object.keys(BY_NAME);
