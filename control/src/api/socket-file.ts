// Preparing the filesystem path of the management socket: the socket is the
// only access control, so its directory and file modes matter, and a socket
// left behind by a crashed daemon must not block a restart.
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname } from 'node:path';

const DIR_MODE = 0o750;
const SOCKET_MODE = 0o660;

export class SocketPathError extends Error {
  override name = 'SocketPathError';
  constructor(
    readonly path: string,
    problem: string,
    options?: ErrorOptions,
  ) {
    super(`management socket ${path}: ${problem}`, options);
  }
}

/** Creates the parent directory and removes a stale socket; refuses a live one. */
export async function prepareSocketPath(path: string): Promise<void> {
  try {
    await mkdir(dirname(path), { recursive: true, mode: DIR_MODE });
  } catch (err) {
    throw new SocketPathError(path, `cannot create its directory: ${errorCode(err)}`, { cause: err });
  }
  const existing = await lstat(path).catch((err: unknown) => {
    if (errorCode(err) === 'ENOENT') return undefined;
    throw new SocketPathError(path, `cannot inspect: ${errorCode(err)}`, { cause: err });
  });
  if (existing === undefined) return;
  if (!existing.isSocket()) throw new SocketPathError(path, 'exists and is not a socket');
  if (await someoneListens(path)) throw new SocketPathError(path, 'another process is serving on it');
  await unlink(path);
}

export async function restrictSocketMode(path: string): Promise<void> {
  await chmod(path, SOCKET_MODE);
}

function someoneListens(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

function errorCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}
