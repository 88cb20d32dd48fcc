// Addresses and frame shorthands shared by the packet tests. Documentation
// prefixes only (RFC 5737, RFC 3849), none of which this host owns, so the
// data plane never takes them for local traffic.
import { buildFrame, type EthernetSpec, type IpSpec, type L4Spec } from '../../control/src/net/packet.js';

export const CLIENT4 = '198.51.100.10';
export const SERVER4 = '203.0.113.20';
export const CLIENT6 = '2001:db8:1::10';
export const SERVER6 = '2001:db8:2::20';

export type Family = 4 | 6;

export function ipSpec(family: Family, fromClient: boolean, extra: Partial<IpSpec> = {}): IpSpec {
  const [src, dst] = fromClient ? [CLIENT4, SERVER4] : [SERVER4, CLIENT4];
  const [src6, dst6] = fromClient ? [CLIENT6, SERVER6] : [SERVER6, CLIENT6];
  return family === 4
    ? ({ version: 4, src, dst, ...extra } as IpSpec)
    : ({ version: 6, src: src6, dst: dst6, ...extra } as IpSpec);
}

/** A frame from the client (or the server) of the test flow. */
export function frame(family: Family, fromClient: boolean, l4: L4Spec, eth?: EthernetSpec, ip: Partial<IpSpec> = {}): Uint8Array {
  return buildFrame({ eth, ip: ipSpec(family, fromClient, ip), l4 });
}
