/** NewJWTSVID for one entry and audience, with the response checks spire-agent makes. */
import type * as grpc from '@grpc/grpc-js';
import type { SignedJWTSVID } from '../types.js';
import { ServerAuthorityError } from './authority-errors.js';
import { SERVER_CALL_TIMEOUT_MS, unary } from './rpc.js';

interface JWTSVIDMessage {
  token?: string;
  issued_at?: string | number;
  expires_at?: string | number;
}

export async function newJWTSVID(client: grpc.Client, entryId: string, audience: readonly string[], timeoutMs = SERVER_CALL_TIMEOUT_MS): Promise<SignedJWTSVID> {
  const resp = await unary<{ svid?: JWTSVIDMessage | null }>(client, 'NewJWTSVID', { entry_id: entryId, audience: [...audience] }, timeoutMs);
  const svid = resp.svid;
  const iat = Number(svid?.issued_at ?? 0);
  const exp = Number(svid?.expires_at ?? 0);
  const bad = (why: string) => new ServerAuthorityError('jwtsvid_malformed', `server-authority: the server's JWT-SVID for entry ${entryId} ${why}`);
  if (!svid || !svid.token) throw bad('is missing');
  if (iat === 0) throw bad('has no issued_at');
  if (exp === 0) throw bad('has no expires_at');
  if (iat > exp) throw bad('was issued after it expired');
  return { token: svid.token, issuedAt: iat * 1000, expiresAt: exp * 1000 };
}
