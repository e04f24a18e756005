/**
 * How spire-agent v1.13.3 reads a server refusal (pkg/common/nodeutil): PermissionDenied with
 * PermissionDeniedDetails AGENT_EXPIRED / AGENT_NOT_ATTESTED / AGENT_NOT_ACTIVE /
 * AGENT_MUST_REATTEST means "attest again" (or, when the method cannot, delete the SVID and
 * exit); AGENT_BANNED means delete the SVID and exit. Anything else is transient.
 */
import * as grpc from '@grpc/grpc-js';
import { permissionDeniedReasons, type PermissionDeniedReason } from './wire.js';

export type ServerVerdict = 'reattest' | 'shutdown' | undefined;

const REATTEST: ReadonlySet<PermissionDeniedReason> = new Set(['AGENT_EXPIRED', 'AGENT_NOT_ATTESTED', 'AGENT_NOT_ACTIVE', 'AGENT_MUST_REATTEST']);

export function reasonsOf(err: unknown): PermissionDeniedReason[] {
  const e = err as Partial<grpc.ServiceError> | undefined;
  if (e?.code !== grpc.status.PERMISSION_DENIED || !e.metadata) return [];
  const out: PermissionDeniedReason[] = [];
  for (const v of e.metadata.get('grpc-status-details-bin')) {
    try {
      out.push(...permissionDeniedReasons(typeof v === 'string' ? Buffer.from(v, 'base64') : new Uint8Array(v)));
    } catch {
      // A malformed detail is no verdict; the error stays transient.
    }
  }
  return out;
}

export function serverVerdict(err: unknown): ServerVerdict {
  const reasons = reasonsOf(err);
  if (reasons.includes('AGENT_BANNED')) return 'shutdown';
  if (reasons.some((r) => REATTEST.has(r))) return 'reattest';
  return undefined;
}
