import { SpiffeAgentError } from '../errors.js';

/**
 * Every svid error carries the stable domain `code` plus a finer `reason`, so callers
 * (Workload API status mapping, tests) can branch without parsing messages.
 */
interface SvidErrorOptions {
  cause?: unknown;
}

export class SpiffeIdError extends SpiffeAgentError {
  readonly reason: string;
  constructor(reason: string, message: string, options?: SvidErrorOptions) {
    super('spiffeid_invalid', message, options);
    this.reason = reason;
  }
}

export class X509SVIDError extends SpiffeAgentError {
  readonly reason: string;
  constructor(reason: string, message: string, options?: SvidErrorOptions) {
    super('x509svid_invalid', message, options);
    this.reason = reason;
  }
}

export class JWTSVIDError extends SpiffeAgentError {
  readonly reason: string;
  constructor(reason: string, message: string, options?: SvidErrorOptions) {
    super('jwtsvid_invalid', message, options);
    this.reason = reason;
  }
}

export class BundleError extends SpiffeAgentError {
  readonly reason: string;
  constructor(reason: string, message: string, options?: SvidErrorOptions) {
    super('bundle_invalid', message, options);
    this.reason = reason;
  }
}

/** Encoding problems (DER framing, PEM blocks); callers usually wrap it in their own domain error. */
export class EncodingError extends SpiffeAgentError {
  readonly reason: string;
  constructor(reason: string, message: string, options?: SvidErrorOptions) {
    super('encoding_invalid', message, options);
    this.reason = reason;
  }
}
