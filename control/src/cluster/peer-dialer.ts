// The dialing side of one peer sync stream (this node has the lower id): dial,
// send our Hello, wait for the peer's, hand the stream over, and dial again
// when it ends, with a short bounded backoff (50 ms doubling to 1 s) while the
// peer is unreachable. Each attempt uses a fresh channel, so a connection that
// went silent is never reused.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../log.js';
import { firstFrame, type First } from './peer-stream.js';
import { STREAM_METHOD } from './transport-codec.js';
import type { TransportCounters } from './transport-stats.js';

const MIN_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 1000;

export type ClientStream = grpc.ClientDuplexStream<Buffer, Buffer>;

export interface DialerHooks {
  /** Our Hello frame for this peer (built at dial time: it carries the current ack). */
  hello(): Buffer;
  /** The peer's first frame arrived: accept it (and take the stream) or refuse it (false). */
  established(call: ClientStream, first: First, close: () => void): boolean;
  /** An accepted stream ended. */
  closed(call: ClientStream): void;
}

export interface DialTarget {
  peerId: number;
  address: string;
  credentials: grpc.ChannelCredentials;
  channelOptions: grpc.ChannelOptions;
  handshakeTimeoutMs: number;
}

const passBytes = (b: Buffer): Buffer => b;

export class PeerDialer {
  private stopped = false;
  private current: { call: ClientStream; client: grpc.Client } | null = null;
  private wake: (() => void) | null = null;
  private lastProblem = '';
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly target: DialTarget,
    private readonly hooks: DialerHooks,
    private readonly counters: TransportCounters,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.running = this.run();
  }

  /** Ends the current stream and the dial loop. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.current?.call.cancel();
    this.wake?.();
    await this.running;
  }

  private async run(): Promise<void> {
    let backoff = MIN_BACKOFF_MS;
    while (!this.stopped) {
      const established = await this.dialOnce();
      if (this.stopped) break;
      backoff = established ? MIN_BACKOFF_MS : Math.min(backoff * 2, MAX_BACKOFF_MS);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, established ? MIN_BACKOFF_MS : backoff);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  /** Resolves when the attempt is over: true if it got as far as an accepted Hello. */
  private dialOnce(): Promise<boolean> {
    const { address, credentials, channelOptions, handshakeTimeoutMs } = this.target;
    return new Promise((resolve) => {
      const client = new grpc.Client(address, credentials, channelOptions);
      const call = client.makeBidiStreamRequest(STREAM_METHOD, passBytes, passBytes, new grpc.Metadata()) as ClientStream;
      this.current = { call, client };
      let established = false;
      let finished = false;
      let error: grpc.ServiceError | undefined;
      const finish = (problem?: string): void => {
        if (finished) return;
        finished = true;
        this.current = null;
        if (established) this.hooks.closed(call);
        else if (!this.stopped) this.failed(error?.code === grpc.status.PERMISSION_DENIED, problem ?? describe(error));
        call.cancel();
        client.close();
        resolve(established);
      };
      call.on('error', (err: grpc.ServiceError) => {
        error = err;
      });
      call.on('status', () => finish());
      call.write(this.hooks.hello());
      firstFrame(call, handshakeTimeoutMs).then(
        (first) => {
          if (finished) return;
          established = this.hooks.established(call, first, () => call.cancel());
          if (established) {
            this.lastProblem = '';
            call.resume();
          } else finish('refused its Hello');
        },
        (err: Error) => {
          // the call's own status says more than "stream ended" when there is one
          if (!error) finish(err.message);
        },
      );
      if (this.stopped) call.cancel();
    });
  }

  private failed(refusedByPeer: boolean, problem: string): void {
    if (refusedByPeer) this.counters.refusedByPeers++;
    else this.counters.dialFailures++;
    // a peer that stays down fails every second: say it once per distinct reason
    const level = problem === this.lastProblem ? 'debug' : 'warn';
    this.lastProblem = problem;
    this.log[level]({ peer: this.target.peerId, address: this.target.address, reason: problem }, 'sync dial failed');
  }
}

function describe(err: grpc.ServiceError | undefined): string {
  if (!err) return 'stream ended';
  return `${grpc.status[err.code] ?? err.code}: ${err.details}`;
}
