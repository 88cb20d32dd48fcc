// The peer sync transport: one long-lived bidirectional gRPC stream per pair
// of nodes (the lower id dials, every node serves), mutual TLS with the
// cluster CA, a Hello each way, heartbeats, and per-peer reliable delivery
// (peer-link.ts). Identity: a peer's certificate must be signed by the cluster
// CA (checked by TLS) and name the node it claims to be (checked here, on both
// sides); anything else is refused, logged and counted.
import * as grpc from '@grpc/grpc-js';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import type { Logger } from '../log.js';
import { PeerDialer, type ClientStream } from './peer-dialer.js';
import { checkClusterId, checkNodeId, IdentityError, nodeCommonName, nodeIdOfCertificate } from './peer-identity.js';
import { PeerLink, type FrameStream } from './peer-link.js';
import { firstFrame } from './peer-stream.js';
import { decodeFrame, encodeFrame, encodePayload, payloadFlowCount, STREAM_METHOD, type InFrame } from './transport-codec.js';
import { TransportCounters } from './transport-stats.js';
import type { NodeState, PeerInfo, SyncPayload } from './types.js';

export interface TransportOptions {
  clusterId: string;
  nodeId: number;
  /** random per process start */
  incarnation: string;
  /** host:port for the sync server (port 0: any; see `port` after start) */
  listen: string;
  peers: { id: number; address: string }[];
  /** PEM; mTLS is mandatory */
  tls: { ca: Buffer; cert: Buffer; key: Buffer };
  heartbeatMs: number;
  failureTimeoutMs: number;
  log: Logger;
  /** Bound of each peer's unacked queue (default 64 MiB); on overflow the oldest payloads are dropped (bulk senders wait for room instead). */
  maxQueueBytes?: number;
}

export interface TransportEvents {
  /** A peer's liveness or announced state changed (connected+hello, state in heartbeat, heartbeat timeout -> 'failed', new incarnation). */
  peerState(id: number, state: NodeState, incarnation: string): void;
  message(from: number, payload: SyncPayload): void;
}

export class TransportConfigError extends Error {
  override name = 'TransportConfigError';
}

export class UnknownPeerError extends Error {
  override name = 'UnknownPeerError';
}

const DEFAULT_MAX_QUEUE_BYTES = 64 << 20;
/** Frames are cut here (~2300 entries): decoding one frame must not stall the receiver's event loop for long. */
const MAX_FRAME_BYTES = 256 << 10;
/** One payload may exceed a frame; gRPC's default 4 MiB limit would refuse a big one. */
const MAX_MESSAGE_BYTES = 64 << 20;
/** TLS plus Hello on a busy machine; a dead peer is retried after this at worst. */
const HANDSHAKE_TIMEOUT_MS = 5000;

type ServerStream = grpc.ServerDuplexStream<Buffer, Buffer>;
const passBytes = (b: Buffer): Buffer => b;

/** PeerSync.Stream with bytes in and out: frames are encoded by transport-codec.ts. */
const peerSyncService: grpc.ServiceDefinition = {
  Stream: {
    path: STREAM_METHOD,
    requestStream: true,
    responseStream: true,
    requestSerialize: passBytes,
    requestDeserialize: passBytes,
    responseSerialize: passBytes,
    responseDeserialize: passBytes,
  },
};

export class PeerTransport {
  private readonly links = new Map<number, PeerLink>();
  private readonly dialers: PeerDialer[] = [];
  private readonly counters = new TransportCounters();
  /** A payload sent to several peers (common state) is encoded once. */
  private readonly encoded = new WeakMap<SyncPayload, Uint8Array>();
  private server: grpc.Server | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private localState: NodeState = 'joining';
  private boundPort = 0;

  constructor(
    private readonly opts: TransportOptions,
    events: TransportEvents,
  ) {
    try {
      checkClusterId(opts.clusterId);
      checkNodeId(opts.nodeId);
      for (const p of opts.peers) checkNodeId(p.id);
    } catch (err) {
      throw new TransportConfigError((err as Error).message, { cause: err });
    }
    if (!(opts.heartbeatMs > 0 && opts.failureTimeoutMs > opts.heartbeatMs))
      throw new TransportConfigError(`failure timeout (${opts.failureTimeoutMs} ms) must exceed the heartbeat interval (${opts.heartbeatMs} ms)`);
    for (const p of opts.peers) {
      if (p.id === opts.nodeId) throw new TransportConfigError(`peer ${p.id} is this node`);
      if (this.links.has(p.id)) throw new TransportConfigError(`peer ${p.id} is listed twice`);
      const linkOptions = {
        id: p.id,
        address: p.address,
        failureTimeoutMs: opts.failureTimeoutMs,
        maxQueueBytes: opts.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES,
        maxFrameBytes: MAX_FRAME_BYTES,
      };
      this.links.set(p.id, new PeerLink(linkOptions, events, this.counters, opts.log));
    }
  }

  /** The sync server's port (useful with listen port 0), known after start(). */
  get port(): number {
    return this.boundPort;
  }

  async start(): Promise<void> {
    const { tls } = this.opts;
    const server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_MESSAGE_BYTES, 'grpc.max_send_message_length': MAX_MESSAGE_BYTES });
    server.addService(peerSyncService, { Stream: (call: ServerStream) => this.accept(call) });
    const credentials = grpc.ServerCredentials.createSsl(tls.ca, [{ cert_chain: tls.cert, private_key: tls.key }], true);
    this.boundPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync(this.opts.listen, credentials, (err, port) => (err ? reject(err) : resolve(port))),
    );
    this.server = server;
    for (const link of this.links.values()) if (link.id > this.opts.nodeId) this.dialers.push(this.dialerFor(link));
    for (const d of this.dialers) d.start();
    this.heartbeat = setInterval(() => {
      for (const link of this.links.values()) link.sendHeartbeat(this.localState);
    }, this.opts.heartbeatMs);
  }

  async stop(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    await Promise.all(this.dialers.map((d) => d.stop()));
    this.dialers.length = 0;
    for (const link of this.links.values()) link.shutdown();
    this.server?.forceShutdown();
    this.server = null;
  }

  /** Announced to all peers at once and in every heartbeat. */
  setLocalState(state: NodeState): void {
    this.localState = state;
    for (const link of this.links.values()) link.sendHeartbeat(state);
  }

  /** Queues `payload` for peer `to`; returns its seq. It is sent on the next tick and resent after a reconnect until acked. */
  send(to: number, payload: SyncPayload): number {
    const link = this.link(to);
    let bytes = this.encoded.get(payload);
    if (!bytes) {
      bytes = encodePayload(payload);
      this.encoded.set(payload, bytes);
    }
    return link.enqueue(bytes, payloadFlowCount(payload));
  }

  /** Resolves when peer `to`'s queue has room for more bulk payloads (see PeerLink.waitForRoom). */
  waitForRoom(to: number): Promise<void> {
    return this.link(to).waitForRoom();
  }

  /** True once peer `to` acked `seq`; false after `timeoutMs`, or if the payload was dropped from a full queue. */
  waitAcked(to: number, seq: number, timeoutMs: number): Promise<boolean> {
    return this.link(to).waitAcked(seq, timeoutMs);
  }

  peers(): PeerInfo[] {
    const now = performance.now();
    return [...this.links.values()].sort((a, b) => a.id - b.id).map((l) => l.info(now));
  }

  stats(): Record<string, bigint> {
    return this.counters.snapshot();
  }

  private link(id: number): PeerLink {
    const link = this.links.get(id);
    if (!link) throw new UnknownPeerError(`node ${id} is not a configured peer`);
    return link;
  }

  private helloFrame(link: PeerLink): Buffer {
    const { ack, ackedIncarnation } = link.helloAck();
    const { clusterId, nodeId, incarnation } = this.opts;
    return encodeFrame({ ack, firstSeq: 0, payloads: [], hello: { clusterId, nodeId, incarnation, state: this.localState, ackedIncarnation } });
  }

  /** Hands an authenticated stream to its link and feeds it the frames that follow the Hello. */
  private bind(link: PeerLink, stream: (ServerStream | ClientStream) & FrameStream, close: () => void): void {
    link.attach(stream, close);
    stream.on('data', (buf: Buffer) => {
      this.counters.framesReceived++;
      this.counters.bytesReceived += buf.length;
      let frame: InFrame;
      try {
        frame = decodeFrame(buf);
      } catch (err) {
        this.counters.malformed++;
        this.opts.log.warn({ peer: link.id, err }, 'sync stream closed: undecodable frame');
        link.detach(stream);
        close();
        return;
      }
      link.onFrame(frame);
    });
    stream.resume();
  }

  private countHandshake(bytes: number): void {
    this.counters.framesReceived++;
    this.counters.bytesReceived += bytes;
  }

  private refuse(call: ServerStream, reason: string): void {
    this.counters.peersRefused++;
    this.opts.log.warn({ peer: call.getPeer(), reason }, 'sync peer refused');
    call.emit('error', { code: grpc.status.PERMISSION_DENIED, details: reason, message: reason, name: 'PeerRefused' });
  }

  /** Why a Hello cannot be accepted from a peer whose certificate names `certId`, or null. */
  private helloProblem(frame: InFrame, certId: number, expectLower: boolean): string | null {
    const hello = frame.hello;
    if (!hello) return 'first frame carries no Hello';
    if (hello.clusterId !== this.opts.clusterId) return `Hello for cluster '${hello.clusterId}', this is '${this.opts.clusterId}'`;
    if (hello.nodeId !== certId) return `claims to be node ${hello.nodeId} but its certificate names node ${certId}`;
    if (!this.links.has(hello.nodeId)) return `node ${hello.nodeId} is not a configured peer`;
    if (expectLower && hello.nodeId > this.opts.nodeId) return `node ${hello.nodeId} has the higher id: this node dials it, not the other way round`;
    return null;
  }

  private accept(call: ServerStream): void {
    // statuses we send end the call; nothing to do with errors beyond that
    call.on('error', () => undefined);
    let certId: number;
    try {
      certId = nodeIdOfCertificate(call.getAuthContext().sslPeerCertificate, this.opts.clusterId);
    } catch (err) {
      this.refuse(call, err instanceof IdentityError ? err.message : String(err));
      return;
    }
    firstFrame(call, HANDSHAKE_TIMEOUT_MS).then(
      ({ frame, bytes }) => {
        this.countHandshake(bytes);
        const problem = this.helloProblem(frame, certId, true);
        if (problem) return this.refuse(call, problem);
        const link = this.links.get(certId)!;
        link.helloReceived(frame.hello!, frame.ack, this.opts.incarnation);
        call.write(this.helloFrame(link));
        const closed = (): void => link.detach(call);
        call.on('end', () => {
          closed();
          call.end();
        });
        call.on('cancelled', closed);
        call.on('close', closed);
        call.on('error', closed);
        this.bind(link, call, () => call.end());
      },
      (err: Error) => {
        this.opts.log.info({ peer: call.getPeer(), reason: err.message }, 'sync handshake failed');
        call.end();
      },
    );
  }

  private dialerFor(link: PeerLink): PeerDialer {
    const { tls, clusterId, log } = this.opts;
    const name = nodeCommonName(link.id);
    const verifyServer = (host: string, cert: PeerCertificate): Error | undefined => {
      try {
        const id = nodeIdOfCertificate(cert, clusterId);
        if (id !== link.id) throw new IdentityError(`its certificate names node ${id}, not node ${link.id}`);
      } catch (err) {
        this.counters.peersRefused++;
        log.warn({ peer: link.id, reason: (err as Error).message }, 'sync peer refused');
        return err as Error;
      }
      return checkServerIdentity(host, cert);
    };
    const credentials = grpc.credentials.createSsl(tls.ca, tls.key, tls.cert, { checkServerIdentity: verifyServer });
    const channelOptions: grpc.ChannelOptions = {
      // peers are dialled by address; their certificates name them node-<id>
      'grpc.ssl_target_name_override': name,
      'grpc.default_authority': name,
      'grpc.initial_reconnect_backoff_ms': 50,
      'grpc.max_reconnect_backoff_ms': 1000,
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
      'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
      'grpc.enable_retries': 0,
      // a fresh connection per dial: the global pool would hand back a silent one
      'grpc.use_local_subchannel_pool': 1,
    };
    return new PeerDialer(
      { peerId: link.id, address: link.address, credentials, channelOptions, handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS },
      {
        hello: () => this.helloFrame(link),
        established: (call, { frame, bytes }, close) => {
          this.countHandshake(bytes);
          const problem = this.helloProblem(frame, link.id, false);
          if (problem) {
            this.counters.peersRefused++;
            log.warn({ peer: link.id, reason: problem }, 'sync peer refused');
            return false;
          }
          link.helloReceived(frame.hello!, frame.ack, this.opts.incarnation);
          this.bind(link, call, close);
          return true;
        },
        closed: (call) => link.detach(call),
      },
      this.counters,
      log,
    );
  }
}
