export { SOCKET_ENV, parseAddress, resolveAddress, validateAddress, type WorkloadAddress } from './address.js';
export { Backoff, type BackoffOptions } from './backoff.js';
export { SECURITY_HEADER, WorkloadAPIClient, type CallOptions, type ClientOptions, type Watcher } from './client.js';
export { structToJSON, type ValidatedJWT, type X509Context } from './convert.js';
export { AddressError, SourceClosedError, TLSAuthorizationError, WorkloadAPIError, WorkloadResponseError } from './errors.js';
export { nullLogger, type SdkLogger } from './logger.js';
export { JWTSource, type JWTSourceOptions } from './jwt-source.js';
export { X509Source, type X509SourceOptions } from './x509-source.js';
// What a workload handles most, so it needs no second import (everything else: the ./svid entry point).
export { SpiffeId, TrustDomain, type BundleSet, type JWTBundle, type JWTSVID, type X509Bundle, type X509SVID } from '../svid/index.js';
