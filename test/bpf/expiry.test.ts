// The expiry sweeper over a real connection map: a pass removes exactly the
// entries idle past their state's timeout, reports each as removed, and
// leaves a census of what is left — the count `syncwall status` reports
// instead of walking the table itself.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FLOW_ENTRY_SIZE, FLOW_KEY_SIZE, flowEntry, flowKey } from '../../control/src/bpf/codec.js';
import { ConnTable } from '../../control/src/bpf/conn-table.js';
import { parseConfig } from '../../control/src/config/load.js';
import { ControllerStats } from '../../control/src/engine/controller-stats.js';
import { ExpirySweeper } from '../../control/src/engine/expiry.js';
import { FlowEventFeed } from '../../control/src/engine/flow-events.js';
import { TimeoutTable } from '../../control/src/engine/timeouts.js';
import { FlowState, MapName } from '../../control/src/gen/layout.js';
import { createLogger } from '../../control/src/log.js';
import { TestDataplane } from './harness.js';

const LIVE = 300;
const IDLE = 120;

let dp: TestDataplane;

before(() => (dp = TestDataplane.load({ connEntries: 1024 })));
after(() => dp.close());

test('a sweep removes the idle entries, reports each, and leaves a census of the rest', async () => {
  const config = parseConfig('interfaces:\n  - { name: eth0, zone: outside }\n', '/etc/syncwall/syncwall.yaml');
  const table = new ConnTable(dp.obj.mapFd(MapName.sw_conns), 64);
  // The sweeper's clock: an idle entry was last seen at 1 ns, longer ago than its timeout, whatever the machine's uptime.
  const now = BigInt(config.timeouts.tcpEstablished + 60) * 1_000_000_000n;
  const keys = new Uint8Array((LIVE + IDLE) * FLOW_KEY_SIZE);
  const values = new Uint8Array((LIVE + IDLE) * FLOW_ENTRY_SIZE);
  for (let n = 0; n < LIVE + IDLE; n++) {
    flowKey.write(keys, n * FLOW_KEY_SIZE, { family: 4, proto: 6, addrA: new Uint8Array([10, 0, n >> 8, n & 255]), addrB: new Uint8Array([10, 1, 0, 1]), portA: 1024 + n, portB: 80 });
    const w = { end: 1, maxEnd: 1, maxWin: 1, maxAck: 1, scale: 0, flags: 0 };
    flowEntry.encode(values, n * FLOW_ENTRY_SIZE, {
      state: FlowState.FS_ESTABLISHED, flags: 0, helper: 0, lastDir: 0, ownerNode: 0, ruleId: 1, version: 1, win: [w, w],
      lastSeenNs: n < LIVE ? now : 1n, packets: [1n, 1n], bytes: [60n, 60n], createdNs: 1n, origIfindex: 1,
    });
  }
  table.upsertBatch(keys, values, LIVE + IDLE);
  const events = new FlowEventFeed();
  let removed = 0;
  events.subscribe({ stateChanged: () => {}, removed: (_key, reason) => void (reason === 'expired' && removed++) });
  const sweeper = new ExpirySweeper({
    table,
    timeouts: new TimeoutTable(config.timeouts),
    events,
    stats: new ControllerStats(),
    log: createLogger('silent'),
    intervalMs: 60_000,
    chunk: 64,
    monotonicNs: () => now,
  });
  assert.equal(sweeper.census(), undefined, 'no census before the first pass');
  assert.equal(await sweeper.sweep(), IDLE);
  assert.equal(removed, IDLE);
  assert.equal(table.count(), LIVE);
  const census = sweeper.census();
  assert.ok(census);
  assert.equal(census.entries, LIVE);
  assert.ok(census.atMs <= performance.now());
});
