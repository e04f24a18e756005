/**
 * Limits on the audience of a requested or validated JWT-SVID. Every value ends up in
 * the token, in the JWT-SVID cache and in the audit record, so an unbounded audience
 * lets one caller make the agent hold and log megabytes per request. Real audiences
 * are a few URLs; a token with more than this would not fit an HTTP header anyway.
 */
import * as grpc from '@grpc/grpc-js';
import { StatusError } from './status.js';

export const MAX_AUDIENCE_VALUES = 64;
/** Total UTF-8 bytes of all audience values of one request. */
export const MAX_AUDIENCE_BYTES = 8192;

/** The non-empty audience values of a FetchJWTSVID(s) request, or InvalidArgument naming the limit. */
export function requireAudience(values: readonly string[] | null | undefined): string[] {
  const audience = (values ?? []).filter((s) => s !== '');
  if (audience.length === 0) throw new StatusError(grpc.status.INVALID_ARGUMENT, 'audience must be specified');
  if (audience.length > MAX_AUDIENCE_VALUES) {
    throw new StatusError(grpc.status.INVALID_ARGUMENT, `audience has ${audience.length} values; at most ${MAX_AUDIENCE_VALUES} are allowed`);
  }
  checkBytes(audience.reduce((n, a) => n + Buffer.byteLength(a, 'utf8'), 0));
  return audience;
}

/** The audience of a ValidateJWTSVID request: one value, same byte limit. */
export function requireValidateAudience(value: string | null | undefined): string {
  if (!value) throw new StatusError(grpc.status.INVALID_ARGUMENT, 'audience must be specified');
  checkBytes(Buffer.byteLength(value, 'utf8'));
  return value;
}

function checkBytes(bytes: number): void {
  if (bytes > MAX_AUDIENCE_BYTES) {
    throw new StatusError(grpc.status.INVALID_ARGUMENT, `audience is ${bytes} bytes long; at most ${MAX_AUDIENCE_BYTES} bytes are allowed`);
  }
}
