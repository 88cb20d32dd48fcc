// Typed client of the management service, used by the CLI and the lab tests.
// Every call has a deadline; replies come back as the backend's view types.
import { resolve as resolvePath } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { ConnFilter, ConnView, DrainResult, PeerView, ReloadResult, StateClassName, StatsView, StatusView, SyncModeChange, SyncModeName } from './backend.js';
import { connFromWire, drainFromWire, peerFromWire, reloadFromWire, statsFromWire, statusFromWire, syncModeChangeFromWire } from './convert.js';
import {
  managementService,
  type WireConnection,
  type WireConnFilter,
  type WireDeleteConnectionsReply,
  type WireDrainReply,
  type WirePeersReply,
  type WireSetSyncModeReply,
  type WireSetSyncModeRequest,
  type WireReloadRulesReply,
  type WireReloadRulesRequest,
  type WireStatsReply,
  type WireStatusReply,
} from './proto.js';

export interface ClientOptions {
  /** Deadline of unary calls. */
  callTimeoutMs?: number;
  /** Deadline of a whole connection listing (a full table can be large). */
  listTimeoutMs?: number;
}

const DEFAULT_CALL_TIMEOUT_MS = 10_000;
const DEFAULT_LIST_TIMEOUT_MS = 300_000;
/** A drain pushes a node's whole share of the table to its peers. */
const DRAIN_TIMEOUT_MS = 120_000;

/** A failed management call; `code` is the gRPC status (see exitCodeForStatus). */
export class ManagementCallError extends Error {
  override name = 'ManagementCallError';
  constructor(
    readonly rpc: string,
    readonly code: grpc.status,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export class ManagementClient {
  private readonly raw: grpc.Client;
  readonly socketPath: string;
  private readonly callTimeoutMs: number;
  private readonly listTimeoutMs: number;

  constructor(socketPath: string, options: ClientOptions = {}) {
    this.socketPath = resolvePath(socketPath);
    this.raw = new grpc.Client(`unix:${this.socketPath}`, grpc.credentials.createInsecure());
    this.callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.listTimeoutMs = options.listTimeoutMs ?? DEFAULT_LIST_TIMEOUT_MS;
  }

  async status(): Promise<StatusView> {
    return statusFromWire(await this.unary<object, WireStatusReply>('Status', {}));
  }

  async *listConnections(filter: ConnFilter = {}): AsyncGenerator<ConnView> {
    const method = methodOf<WireConnFilter, WireConnection>('ListConnections');
    const stream = this.raw.makeServerStreamRequest<WireConnFilter, WireConnection>(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      filter,
      new grpc.Metadata(),
      { deadline: Date.now() + this.listTimeoutMs },
    );
    try {
      for await (const conn of stream) yield connFromWire(conn as WireConnection);
    } catch (err) {
      throw this.callError('ListConnections', err);
    } finally {
      stream.cancel();
    }
  }

  /** Deletes the matching connections (all for an empty filter); returns how many. */
  async deleteConnections(filter: ConnFilter = {}): Promise<number> {
    const reply = await this.unary<WireConnFilter, WireDeleteConnectionsReply>('DeleteConnections', filter);
    return Number(reply.deleted);
  }

  async reloadRules(recheck: boolean): Promise<ReloadResult> {
    return reloadFromWire(await this.unary<WireReloadRulesRequest, WireReloadRulesReply>('ReloadRules', { recheck }));
  }

  async stats(): Promise<StatsView> {
    return statsFromWire(await this.unary<object, WireStatsReply>('Stats', {}));
  }

  async peers(): Promise<PeerView[]> {
    return (await this.unary<object, WirePeersReply>('Peers', {})).peers.map(peerFromWire);
  }

  async setSyncMode(stateClass: StateClassName, mode: SyncModeName): Promise<SyncModeChange> {
    return syncModeChangeFromWire(await this.unary<WireSetSyncModeRequest, WireSetSyncModeReply>('SetSyncMode', { stateClass, mode }));
  }

  /** Drains the node; waits for the whole hand-over (longer deadline than other calls). */
  async drain(): Promise<DrainResult> {
    return drainFromWire(await this.unary<object, WireDrainReply>('Drain', {}, DRAIN_TIMEOUT_MS));
  }

  close(): void {
    this.raw.close();
  }

  private unary<Req, Res>(rpc: string, request: Req, timeoutMs = this.callTimeoutMs): Promise<Res> {
    const method = methodOf<Req, Res>(rpc);
    return new Promise((resolve, reject) => {
      this.raw.makeUnaryRequest<Req, Res>(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        request,
        new grpc.Metadata(),
        { deadline: Date.now() + timeoutMs },
        (err, reply) => (err || reply === undefined ? reject(this.callError(rpc, err)) : resolve(reply)),
      );
    });
  }

  private callError(rpc: string, err: unknown): ManagementCallError {
    const serviceError = err as Partial<grpc.ServiceError> | null;
    const code = serviceError?.code ?? grpc.status.UNKNOWN;
    const details = serviceError?.details ?? String(err);
    if (code === grpc.status.UNAVAILABLE || code === grpc.status.DEADLINE_EXCEEDED) {
      return new ManagementCallError(rpc, code, `cannot reach syncwalld at ${this.socketPath}: ${unreachableReason(code, details)}`, { cause: err });
    }
    return new ManagementCallError(rpc, code, details, { cause: err });
  }
}

function methodOf<Req, Res>(rpc: string): grpc.MethodDefinition<Req, Res> {
  const method = managementService[rpc];
  if (method === undefined) throw new Error(`management.proto has no method ${rpc}`);
  return method as grpc.MethodDefinition<Req, Res>;
}

/** grpc-js buries the connect errno in prose; the errno is what a user can act on. */
function unreachableReason(code: grpc.status, details: string): string {
  if (code === grpc.status.DEADLINE_EXCEEDED) return 'timed out';
  return /\b(E[A-Z]{2,})\b/.exec(details)?.[1] ?? details;
}
