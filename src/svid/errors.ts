import { SpiffeAgentError } from '../errors.js';

declare module '../errors.js' {
  interface ErrorCodes {
    svid: 'spiffeid_invalid' | 'x509svid_invalid' | 'jwtsvid_invalid' | 'bundle_invalid' | 'encoding_invalid';
  }
}

/**
 * Every svid error carries the stable domain `code` plus a finer `reason`, so callers
 * (Workload API status mapping, tests) can branch without parsing messages.
 */
interface SvidErrorOptions {
  cause?: unknown;
}

export class SpiffeIdError extends SpiffeAgentError<'spiffeid_invalid'> {
  readonly reason: string;
  constructor(reason: string, message: string, options?: SvidErrorOptions) {
    super('spiffeid_invalid', message, options);
    this.reason = reason;
  }
}

export class X509SVIDError extends SpiffeAgentError<'x509svid_invalid'> {
  readonly reason: string;
  constructor(reason: string, message: string, options?: SvidErrorOptions) {
    super('x509svid_invalid', message, options);
    this.reason = reason;
  }
}

export class JWTSVIDError extends SpiffeAgentError<'jwtsvid_invalid'> {
  readonly reason: string;
  constructor(reason: string, message: string, options?: SvidErrorOptions) {
    super('jwtsvid_invalid', message, options);
    this.reason = reason;
  }
}

export class BundleError extends SpiffeAgentError<'bundle_invalid'> {
  readonly reason: string;
  constructor(reason: string, message: string, options?: SvidErrorOptions) {
    super('bundle_invalid', message, options);
    this.reason = reason;
  }
}

/** Encoding problems (DER framing, PEM blocks); callers usually wrap it in their own domain error. */
export class EncodingError extends SpiffeAgentError<'encoding_invalid'> {
  readonly reason: string;
  constructor(reason: string, message: string, options?: SvidErrorOptions) {
    super('encoding_invalid', message, options);
    this.reason = reason;
  }
}
