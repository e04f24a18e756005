import { GRPC_CODE_NAMES as CODE_NAMES } from '../../errors.js';

/** The `status` label of call metrics: gRPC code names as Go prints them. */

export function codeName(code: number): string {
  return CODE_NAMES[code] ?? `Code(${code})`;
}

/** An error's gRPC code name when it carries a numeric one, else Unknown (as spire's CallCounter says for plain errors). */
export function statusName(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? codeName(code) : 'Unknown';
}
