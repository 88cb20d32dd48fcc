// The namespace forward.test.ts builds and forward-probe.ts runs in.
export const IN_DEV = 'in';
export const OUT_DEV = 'out';
export const OUT_MAC = '02:00:00:00:0b:01';
export const SERVER_MAC = '02:00:00:00:00:20';
export const OUT_MTU = 1300;
/** On the egress subnet, without a neighbour entry. */
export const NO_NEIGH4 = '203.0.113.30';
export const NO_NEIGH6 = '2001:db8:2::30';
/** The router's own egress addresses. */
export const ROUTER4 = '203.0.113.1';
export const ROUTER6 = '2001:db8:2::1';
