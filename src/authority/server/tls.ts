/**
 * TLS to the SPIRE server as spire-agent does it (pkg/agent/client/dial.go): the chain must
 * verify against the agent's own trust domain bundle and the leaf's only URI SAN must be
 * spiffe://<td>/spire/server. The hostname is never checked (server certificates rarely name
 * it), so Node's hostname check is replaced by the SPIFFE ID check.
 */
import * as grpc from '@grpc/grpc-js';
import { X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import * as tls from 'node:tls';
import { PQ_KEM_GROUP } from '../../net/pq-kem.js';
import { pemEncodeCertificates, sanURIs } from '../../svid/der.js';
import { SessionError } from './session-errors.js';

export function serverIdOf(trustDomain: string): string {
  return `spiffe://${trustDomain}/spire/server`;
}

/** undefined when `der` is the expected server; else the problem, phrased as spire-agent's. */
export function checkServerId(der: Uint8Array, expected: string): string | undefined {
  let uris: string[];
  try {
    // node:crypto throws on what is not a certificate; the URI SANs are then read from its DER.
    new X509Certificate(der);
    uris = sanURIs(der);
  } catch (err) {
    return `server certificate cannot be parsed: ${(err as Error).message}`;
  }
  if (uris.length !== 1 || uris[0] !== expected) return `expected server SPIFFE ID "${expected}"; got ${JSON.stringify(uris)}`;
  return undefined;
}

export interface AgentCredentials {
  /** DER, leaf first. */
  readonly chain: readonly Uint8Array[];
  readonly key: KeyObject;
}

/** TLS settings of the server connection beyond its keys (spire-agent's TLSPolicy). */
export interface TlsPolicy {
  /** Offer only X25519MLKEM768; load.ts has checked the runtime supports it. */
  readonly requirePqKem?: boolean | undefined;
}

function groups(policy: TlsPolicy): { ecdhCurve?: string } {
  return policy.requirePqKem ? { ecdhCurve: PQ_KEM_GROUP } : {};
}

/** Channel credentials that verify the server against `bundle` and present `agent` when given (mTLS). */
export function serverCredentials(bundle: readonly Uint8Array[], expectedId: string, agent?: AgentCredentials, policy: TlsPolicy = {}): grpc.ChannelCredentials {
  const roots = Buffer.from(pemEncodeCertificates(bundle));
  const key = agent ? Buffer.from(agent.key.export({ type: 'pkcs8', format: 'pem' }) as string) : null;
  const chain = agent ? Buffer.from(pemEncodeCertificates(agent.chain)) : null;
  const verify: grpc.VerifyOptions = {
    // Called by Node only after the chain verified against `roots`.
    checkServerIdentity: (_host, cert) => {
      const problem = checkServerId(new Uint8Array(cert.raw), expectedId);
      return problem === undefined ? undefined : new SessionError('server_identity', `client: ${problem}`);
    },
  };
  if (!policy.requirePqKem) return grpc.credentials.createSsl(roots, key, chain, verify);
  // createSsl takes no key-exchange groups; a secure context built here carries them.
  const ctx = tls.createSecureContext({ ca: roots, ...(key && chain ? { key, cert: chain } : {}), ...groups(policy) });
  return grpc.credentials.createFromSecureContext(ctx, verify);
}

/**
 * insecure_bootstrap: no chain verification at all. Node does not call checkServerIdentity when
 * the chain is unverified, so the ID is checked by a separate handshake first — the same soft
 * "is this the right trust domain's server" check spire-agent makes, not a security feature.
 */
export async function insecureCredentials(host: string, port: number, expectedId: string, signal?: AbortSignal, policy: TlsPolicy = {}): Promise<grpc.ChannelCredentials> {
  const leaf = await peerLeaf(host, port, signal, policy);
  const problem = checkServerId(leaf, expectedId);
  if (problem !== undefined) throw new SessionError('server_identity', `client: insecure bootstrap: ${problem}`);
  const verify = { rejectUnauthorized: false, checkServerIdentity: () => undefined };
  if (!policy.requirePqKem) return grpc.credentials.createSsl(null, null, null, verify);
  return grpc.credentials.createFromSecureContext(tls.createSecureContext(groups(policy)), verify);
}

function peerLeaf(host: string, port: number, signal: AbortSignal | undefined, policy: TlsPolicy): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({ host, port, rejectUnauthorized: false, ALPNProtocols: ['h2'], servername: isIP(host) ? undefined : host, ...groups(policy) });
    const done = (err?: Error, leaf?: Uint8Array) => {
      signal?.removeEventListener('abort', onAbort);
      sock.destroy();
      if (err) reject(new SessionError('attestation_failed', `client: cannot reach SPIRE server at ${host}:${port}: ${err.message}`, { cause: err }));
      else resolve(leaf as Uint8Array);
    };
    const onAbort = () => done(new Error('aborted'));
    signal?.addEventListener('abort', onAbort);
    sock.setTimeout(30_000, () => done(new Error('TLS handshake timed out after 30s')));
    sock.once('secureConnect', () => {
      const cert = sock.getPeerCertificate();
      if (!cert?.raw) done(new Error('server presented no certificate'));
      else done(undefined, new Uint8Array(cert.raw));
    });
    sock.once('error', (err) => done(err));
  });
}

/** Whether a gRPC/TLS failure means the server's chain does not verify against our bundle (Go's x509.UnknownAuthorityError). */
export function isUnknownAuthorityError(err: unknown): boolean {
  const text = `${(err as { details?: string })?.details ?? ''} ${(err as Error)?.message ?? ''}`;
  return /unable to get local issuer certificate|self[- ]signed certificate|unable to verify the first certificate|certificate signature failure|UNABLE_TO_GET_ISSUER_CERT|SELF_SIGNED_CERT/i.test(text);
}

/** The TLS reason inside grpc-js's "No connection established. Last error: ..." wrapping, for messages. */
export function tlsFailureReason(err: unknown): string {
  const text = (err as { details?: string })?.details ?? (err as Error)?.message ?? String(err);
  const m = /Last error: (?:Error: )?([^.]+)/.exec(text.slice(text.lastIndexOf('Last error:')));
  // Node 24 appends advice about its own --use-system-ca flag, which means nothing to an operator of the agent.
  return m?.[1]?.split('; if the root CA')[0]?.trim() || text;
}
