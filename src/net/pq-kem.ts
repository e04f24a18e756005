/**
 * experimental.require_pq_kem: the connection to the SPIRE server offers only the hybrid
 * post-quantum key exchange X25519MLKEM768 (spire-agent's TLSPolicy). OpenSSL has it from 3.5,
 * which Node 24 bundles; older runtimes cannot offer it, and the agent refuses the key then
 * rather than connect without it.
 */
import { createSecureContext } from 'node:tls';

export const PQ_KEM_GROUP = 'X25519MLKEM768';

/** undefined when this runtime can offer X25519MLKEM768; else why not, for the operator. */
export function pqKemUnsupportedReason(): string | undefined {
  try {
    createSecureContext({ ecdhCurve: PQ_KEM_GROUP });
    return undefined;
  } catch {
    return `this Node.js ${process.version} (OpenSSL ${process.versions.openssl}) cannot offer the ${PQ_KEM_GROUP} key exchange; run the agent on Node.js 24 or later (OpenSSL 3.5+), or remove require_pq_kem`;
  }
}
