// Validation of request fields, done once where requests enter the daemon so
// the backend can trust every ConnFilter it is handed.
import { parsePrefix } from '../rules/addr.js';
import type { ConnFilter, StateClassName, SyncModeName } from './backend.js';
import { InvalidArgumentError } from './errors.js';
import type { WireConnFilter, WireSetSyncModeRequest } from './proto.js';

const STATE_NAME = /^[a-z][a-z0-9_]*$/;

export function filterFromWire(w: WireConnFilter): ConnFilter {
  const filter: ConnFilter = {};
  if (w.family !== undefined) {
    if (w.family !== 4 && w.family !== 6) throw new InvalidArgumentError('family', `must be 4 or 6, got ${w.family}`);
    filter.family = w.family;
  }
  if (w.proto !== undefined) {
    if (w.proto > 255) throw new InvalidArgumentError('proto', `must be an IP protocol number 0..255, got ${w.proto}`);
    filter.proto = w.proto;
  }
  if (w.addr !== undefined) {
    checkPrefix(w.addr, filter.family);
    filter.addr = w.addr;
  }
  if (w.port !== undefined) {
    if (w.port < 1 || w.port > 65535) throw new InvalidArgumentError('port', `must be 1..65535, got ${w.port}`);
    filter.port = w.port;
  }
  if (w.state !== undefined) {
    const state = w.state.toLowerCase();
    if (!STATE_NAME.test(state)) throw new InvalidArgumentError('state', `not a state name: ${JSON.stringify(w.state)}`);
    filter.state = state;
  }
  return filter;
}

/** Accepts an address or prefix, and rejects a family mismatch. */
function checkPrefix(text: string, family: 4 | 6 | undefined): void {
  const prefix = parsePrefix(text);
  if (typeof prefix === 'string') throw new InvalidArgumentError('addr', prefix);
  if (family !== undefined && family !== prefix.family) {
    throw new InvalidArgumentError('addr', `${text} is IPv${prefix.family} but family is ${family}`);
  }
}

const STATE_CLASSES: readonly StateClassName[] = ['node', 'common'];
const SYNC_MODES: readonly SyncModeName[] = ['on-demand', 'periodic', 'combined', 'off'];

export function syncModeFromWire(w: WireSetSyncModeRequest): { stateClass: StateClassName; mode: SyncModeName } {
  const stateClass = STATE_CLASSES.find((c) => c === w.stateClass);
  if (!stateClass) throw new InvalidArgumentError('state_class', `must be ${STATE_CLASSES.join(' or ')}, got ${JSON.stringify(w.stateClass)}`);
  const mode = SYNC_MODES.find((m) => m === w.mode);
  if (!mode) throw new InvalidArgumentError('mode', `must be ${SYNC_MODES.join(', ')}, got ${JSON.stringify(w.mode)}`);
  return { stateClass, mode };
}
