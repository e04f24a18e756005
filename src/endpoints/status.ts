/**
 * The one place errors become gRPC statuses. grpc-js turns anything without a
 * numeric `code` into UNKNOWN, so handlers always fail through here.
 */
import * as grpc from '@grpc/grpc-js';
import { SpiffeAgentError } from '../errors.js';

export class StatusError extends SpiffeAgentError {
  constructor(
    readonly status: grpc.status,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`grpc_${grpc.status[status]?.toLowerCase() ?? status}`, message, options);
  }
}

const BY_CODE: Readonly<Record<string, grpc.status>> = {
  caller_gone: grpc.status.UNAUTHENTICATED,
  no_peer_pid: grpc.status.UNAUTHENTICATED,
  no_peer_fd: grpc.status.UNAUTHENTICATED,
  attestation_failed: grpc.status.UNAVAILABLE,
  // gRPC's code for "do not retry until the system is fixed": the binary will not shrink.
  workload_refused: grpc.status.FAILED_PRECONDITION,
  workload_gone: grpc.status.NOT_FOUND,
  sign_failed: grpc.status.UNAVAILABLE,
  jwtsvid_invalid: grpc.status.INVALID_ARGUMENT,
  spiffeid_invalid: grpc.status.INVALID_ARGUMENT,
};

export function toServiceError(err: unknown): Partial<grpc.ServiceError> & { code: grpc.status; details: string } {
  if (err instanceof StatusError) return { code: err.status, details: err.message, message: err.message };
  if (err instanceof SpiffeAgentError) {
    const code = BY_CODE[err.code] ?? grpc.status.INTERNAL;
    return { code, details: err.message, message: err.message };
  }
  const msg = err instanceof Error ? err.message : String(err);
  return { code: grpc.status.INTERNAL, details: msg, message: msg };
}
