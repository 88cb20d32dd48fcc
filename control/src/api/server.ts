// The management gRPC service: translates between wire messages and the
// ManagementBackend, validates requests at the edge, maps failures to status
// codes (api/errors.ts). Listens on a Unix socket only, never on TCP.
import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../log.js';
import type { ManagementBackend } from './backend.js';
import { connToWire, drainToWire, peerToWire, reloadToWire, statsToWire, statusToWire } from './convert.js';
import { grpcStatusFor } from './errors.js';
import { managementService, type WireConnFilter, type WireReloadRulesRequest, type WireSetSyncModeRequest } from './proto.js';
import { prepareSocketPath, restrictSocketMode, SocketPathError } from './socket-file.js';
import { filterFromWire, syncModeFromWire } from './validate.js';

/** How long close() lets in-flight calls (e.g. a long listing) finish before cutting them. */
const SHUTDOWN_GRACE_MS = 2000;

export interface ManagementServer {
  close(): Promise<void>;
}

export async function startManagementServer(backend: ManagementBackend, socketPath: string, log: Logger): Promise<ManagementServer> {
  await prepareSocketPath(socketPath);
  const server = new grpc.Server();
  server.addService(managementService, handlers(backend, log));
  try {
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(`unix:${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
    });
    await restrictSocketMode(socketPath);
  } catch (err) {
    server.forceShutdown();
    throw new SocketPathError(socketPath, `cannot listen: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  log.info({ socket: socketPath }, 'management service listening');
  return {
    close: () =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), SHUTDOWN_GRACE_MS);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}

function handlers(backend: ManagementBackend, log: Logger): grpc.UntypedServiceImplementation {
  return {
    Status: unary(log, 'Status', async () => statusToWire(backend.status())),
    ListConnections: listConnections(backend, log),
    DeleteConnections: unary(log, 'DeleteConnections', async (req: WireConnFilter) => {
      const filter = filterFromWire(req);
      const deleted = await backend.deleteConnections(filter);
      log.info({ filter, deleted }, 'connections deleted');
      return { deleted: String(deleted) };
    }),
    ReloadRules: unary(log, 'ReloadRules', async (req: WireReloadRulesRequest) => {
      const result = await backend.reloadRules(req.recheck);
      log.info({ recheck: req.recheck, ...result }, 'rules reloaded');
      return reloadToWire(result);
    }),
    Stats: unary(log, 'Stats', async () => statsToWire(backend.stats())),
    Peers: unary(log, 'Peers', async () => ({ peers: backend.peers().map(peerToWire) })),
    SetSyncMode: unary(log, 'SetSyncMode', async (req: WireSetSyncModeRequest) => {
      const { stateClass, mode } = syncModeFromWire(req);
      return backend.setSyncMode(stateClass, mode);
    }),
    Drain: unary(log, 'Drain', async () => {
      log.info('drain requested');
      return drainToWire(await backend.drain());
    }),
  };
}

function unary<Req, Res>(log: Logger, rpc: string, run: (req: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    run(call.request).then(
      (reply) => callback(null, reply),
      (err: unknown) => callback(failure(log, rpc, err)),
    );
  };
}

/** Streams with backpressure and stops iterating the backend when the client goes away. */
function listConnections(backend: ManagementBackend, log: Logger): grpc.handleServerStreamingCall<WireConnFilter, unknown> {
  return async (call) => {
    const gone = new AbortController();
    call.once('cancelled', () => gone.abort());
    try {
      const filter = filterFromWire(call.request);
      for await (const conn of backend.listConnections(filter)) {
        if (gone.signal.aborted) return;
        if (!call.write(connToWire(conn))) await once(call, 'drain', { signal: gone.signal });
      }
      call.end();
    } catch (err) {
      if (gone.signal.aborted) return;
      call.emit('error', failure(log, 'ListConnections', err));
    }
  };
}

function failure(log: Logger, rpc: string, err: unknown): Partial<grpc.StatusObject> {
  const { code, details } = grpcStatusFor(err);
  const level = code === grpc.status.INTERNAL ? 'error' : 'warn';
  log[level]({ rpc, code: grpc.status[code], err }, 'management call failed');
  return { code, details, metadata: new grpc.Metadata() };
}
