// A cluster node's transport played by the test: nothing goes on the wire,
// every payload the node sends is handed to `onSend`, every wait succeeds at
// once. The test drives the node's side of things through the
// TransportEvents the node registers (captured by `transportFactory`).
import type { Transport } from '../../control/src/cluster/cluster-node.js';
import type { TransportEvents, TransportOptions } from '../../control/src/cluster/transport.js';
import type { SyncPayload } from '../../control/src/cluster/types.js';

export interface ScriptedTransport {
  /** For ClusterNodeDeps.transport. */
  factory(opts: TransportOptions, events: TransportEvents): Transport;
  /** The node's event hooks, once it was constructed. */
  events(): TransportEvents;
}

export function scriptedTransport(onSend: (to: number, payload: SyncPayload) => void = () => {}): ScriptedTransport {
  let seq = 0;
  let captured: TransportEvents | undefined;
  const transport: Transport = {
    start: async () => {},
    stop: async () => {},
    setLocalState: () => {},
    send: (to, payload) => {
      onSend(to, payload);
      return ++seq;
    },
    waitForRoom: async () => {},
    waitAcked: async () => true,
    peers: () => [],
    stats: () => ({}) as ReturnType<Transport['stats']>,
  };
  return {
    factory: (_opts, events) => {
      captured = events;
      return transport;
    },
    events: () => {
      if (!captured) throw new Error('the cluster node has not been constructed yet');
      return captured;
    },
  };
}
