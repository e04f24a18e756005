import { GRPC_CODE_NAMES, SpiffeAgentError } from '../errors.js';

/** The SDK's codes; it runs in workloads, so none of them is ever a status the agent returns. */
declare module '../errors.js' {
  interface ErrorCodes {
    sdk:
      | 'workloadapi_address'
      | 'workloadapi_rpc'
      | 'workloadapi_response'
      | 'workloadapi_source_closed'
      | 'workloadapi_timeout'
      | 'workloadapi_no_svid'
      | 'workloadapi_no_bundle'
      | 'workloadapi_proto'
      | 'tlsconfig_unauthorized';
  }
}

/** gRPC status names by number (shared with the daemon's metrics), re-exported for the SDK's users. */
export { GRPC_CODE_NAMES };

/** A malformed Workload API endpoint address (SPIFFE_ENDPOINT_SOCKET or the address option). */
export class AddressError extends SpiffeAgentError {
  constructor(message: string) {
    super('workloadapi_address', `workloadapi: ${message}`);
  }
}

/** A Workload API call failed; `status` is the numeric gRPC status code. */
export class WorkloadAPIError extends SpiffeAgentError {
  readonly status: number;
  readonly details: string;

  constructor(status: number, details: string, options?: { cause?: unknown }) {
    super(
      'workloadapi_rpc',
      `workloadapi: rpc error: code = ${GRPC_CODE_NAMES[status] ?? `Code(${status})`} desc = ${details}`,
      options,
    );
    this.status = status;
    this.details = details;
  }

  /** go-spiffe's rendering of a gRPC status, which spire-agent's CLI prints as is. */
  get grpcMessage(): string {
    return `rpc error: code = ${GRPC_CODE_NAMES[this.status] ?? `Code(${this.status})`} desc = ${this.details}`;
  }
}

/** The Workload API answered with something the SDK cannot use (bad DER, key mismatch, ...). */
export class WorkloadResponseError extends SpiffeAgentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('workloadapi_response', `workloadapi: ${message}`, options);
  }
}

/** A source was used after close(). */
export class SourceClosedError extends SpiffeAgentError {
  constructor(kind: string) {
    super('workloadapi_source_closed', `workloadapi: ${kind} source is closed`);
  }
}

/** The tls helpers' authorizer refused a verified peer (its SPIFFE ID is not one this side accepts). */
export class TLSAuthorizationError extends SpiffeAgentError {
  constructor(message: string) {
    super('tlsconfig_unauthorized', `tlsconfig: ${message}`);
  }
}
