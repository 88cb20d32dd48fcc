// The one place that maps errors to gRPC status codes (server side) and gRPC
// status codes to CLI exit codes (client side).
import { status } from '@grpc/grpc-js';
import { ProblemsError } from '../rules/problem.js';

/** A request field that failed validation at the API edge. */
export class InvalidArgumentError extends Error {
  override name = 'InvalidArgumentError';
  constructor(
    readonly field: string,
    problem: string,
    options?: ErrorOptions,
  ) {
    super(`${field}: ${problem}`, options);
  }
}

/** The request is valid but the daemon's state does not allow it (e.g. a cluster command on a single node). */
export class PreconditionError extends Error {
  override name = 'PreconditionError';
}

export interface GrpcStatus {
  code: status;
  details: string;
}

/** Chooses the status a failed call reports; unknown errors are INTERNAL. */
export function grpcStatusFor(err: unknown): GrpcStatus {
  if (err instanceof InvalidArgumentError) return { code: status.INVALID_ARGUMENT, details: err.message };
  // A rules or config file on disk is invalid: the request was fine, the
  // daemon's state does not allow it. Details carry one problem per line.
  if (err instanceof ProblemsError) return { code: status.FAILED_PRECONDITION, details: err.message };
  if (err instanceof PreconditionError) return { code: status.FAILED_PRECONDITION, details: err.message };
  return { code: status.INTERNAL, details: err instanceof Error ? err.message : String(err) };
}

export const ExitCode = {
  ok: 0,
  /** Bad arguments, invalid files, a request the daemon refused as invalid. */
  user: 1,
  /** The daemon could not be reached (no socket, refused, timed out). */
  unreachable: 2,
  /** The daemon failed while handling a valid request. */
  server: 3,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export function exitCodeForStatus(code: status): ExitCode {
  switch (code) {
    case status.OK:
      return ExitCode.ok;
    case status.INVALID_ARGUMENT:
    case status.FAILED_PRECONDITION:
    case status.NOT_FOUND:
    case status.OUT_OF_RANGE:
      return ExitCode.user;
    case status.UNAVAILABLE:
    case status.DEADLINE_EXCEEDED:
      return ExitCode.unreachable;
    default:
      return ExitCode.server;
  }
}
