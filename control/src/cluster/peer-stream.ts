// The Hello exchange's building blocks, shared by the dialing and the
// accepting side of a peer sync stream.
import type { EventEmitter } from 'node:events';
import { decodeFrame, type InFrame } from './transport-codec.js';

export class HandshakeError extends Error {
  override name = 'HandshakeError';
}

/**
 * The first frame of `stream`, decoded. The stream is paused right after it,
 * so nothing that follows is lost before the link's listener takes over.
 */
export interface First {
  frame: InFrame;
  /** its size on the wire, for counters */
  bytes: number;
}

export function firstFrame(stream: EventEmitter & { pause(): unknown }, timeoutMs: number): Promise<First> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
    };
    const onData = (buf: Buffer): void => {
      stream.pause();
      done();
      try {
        resolve({ frame: decodeFrame(buf), bytes: buf.length });
      } catch (err) {
        reject(new HandshakeError('first frame is not a sync Frame', { cause: err }));
      }
    };
    const onEnd = (): void => {
      done();
      reject(new HandshakeError('stream ended before a Hello'));
    };
    const onError = (err: Error): void => {
      done();
      reject(err);
    };
    const timer = setTimeout(() => {
      done();
      reject(new HandshakeError(`no Hello within ${timeoutMs} ms`));
    }, timeoutMs);
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', onError);
  });
}
