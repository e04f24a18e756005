/**
 * One error base for the whole project. `code` is stable and machine-readable;
 * `message` starts with the module that raised it (e.g. "x509svid: ...") and says
 * what the user can do about it. Subclasses live next to their domain.
 *
 * Codes are typed. Each domain lists its codes where its error class is, and adds them to
 * `ErrorCodes` by declaration merging:
 *
 *     declare module '../errors.js' { interface ErrorCodes { proc: 'process_gone' | 'proc_read' } }
 *     export class ProcError extends SpiffeAgentError<ErrorCodes['proc']> {}
 *
 * so a code that is not listed does not compile, and endpoints/status.ts maps every code to a
 * gRPC status in one Record that the compiler checks for completeness (README "Errors" lists them).
 */
// Filled by the domains (declaration merging); empty here on purpose.
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface ErrorCodes {}

/** Every error code of the daemon and the SDK. */
export type ErrorCode = ErrorCodes[keyof ErrorCodes];

export class SpiffeAgentError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;

  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * gRPC status code names by number, as Go prints them (codes.Code.String()): for messages that read
 * like go-spiffe's `rpc error: code = ...` and for the `status` label of call metrics.
 */
export const GRPC_CODE_NAMES: readonly string[] = [
  'OK',
  'Canceled',
  'Unknown',
  'InvalidArgument',
  'DeadlineExceeded',
  'NotFound',
  'AlreadyExists',
  'PermissionDenied',
  'ResourceExhausted',
  'FailedPrecondition',
  'Aborted',
  'OutOfRange',
  'Unimplemented',
  'Internal',
  'Unavailable',
  'DataLoss',
  'Unauthenticated',
];
