// Turning any failure of a command into a message on stderr and an exit code
// (0 ok, 1 user or validation error, 2 daemon unreachable, 3 other error).
import { ManagementCallError } from '../api/client.js';
import { ExitCode, exitCodeForStatus } from '../api/errors.js';
import { printError } from './output.js';

/** A failure the CLI detected itself (bad argument, unreadable config), with its exit code. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: ExitCode = ExitCode.user,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Wraps a command handler so it reports failures instead of throwing into yargs. */
export function reportingFailures<A>(what: string, handler: (argv: A) => Promise<void>): (argv: A) => Promise<void> {
  return async (argv) => {
    try {
      await handler(argv);
    } catch (err) {
      process.exitCode = report(what, err);
    }
  };
}

function report(what: string, err: unknown): ExitCode {
  if (err instanceof CliError) {
    printError(err.message);
    return err.exitCode;
  }
  if (err instanceof ManagementCallError) {
    const exitCode = exitCodeForStatus(err.code);
    // "cannot reach syncwalld at ..." already says what failed.
    printError(exitCode === ExitCode.unreachable ? err.message : failed(what, err.message));
    return exitCode;
  }
  printError(failed(what, err instanceof Error ? err.message : String(err)));
  return ExitCode.server;
}

/** A multi-line reason (one problem per line) starts below the summary line. */
function failed(what: string, reason: string): string {
  return `${what} failed:${reason.includes('\n') ? '\n' : ' '}${reason}`;
}
