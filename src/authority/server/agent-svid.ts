/**
 * The agent's own SVID: matching a stored chain to a stored key, expiry as spire-agent judges
 * it (1 s skew), and spire-agent's rotation rule (pkg/common/rotationutil) with its jitter.
 */
import { X509Certificate } from 'node:crypto';
import { tokenFingerprint } from '../../attestation/node/join-token/index.js';
import { sanURIs } from '../../svid/der.js';
import type { ManagedKey } from '../../keymanager/types.js';

export interface AgentSVIDState {
  /** DER, leaf first. */
  readonly chain: readonly Uint8Array[];
  readonly key: ManagedKey;
  readonly reattestable: boolean;
  readonly spiffeId: string;
  /** Epoch ms. */
  readonly notBefore: number;
  readonly notAfter: number;
  /** Epoch ms of the attestation or renewal that produced it (or of loading it from disk). */
  readonly renewedAt: number;
}

export function leafInfo(leaf: Uint8Array): { spiffeId: string; notBefore: number; notAfter: number; spki: Uint8Array } {
  const c = new X509Certificate(leaf);
  const uris = sanURIs(leaf);
  return {
    spiffeId: uris[0] ?? '',
    notBefore: Date.parse(c.validFrom),
    notAfter: Date.parse(c.validTo),
    spki: new Uint8Array(c.publicKey.export({ type: 'spki', format: 'der' })),
  };
}

/** The key whose public half is the leaf's, if any. */
export function findKeyForSVID(keys: readonly ManagedKey[], leaf: Uint8Array | undefined): ManagedKey | undefined {
  if (!leaf) return undefined;
  const spki = Buffer.from(leafInfo(leaf).spki);
  return keys.find((k) => Buffer.compare(Buffer.from(k.publicKeySpki), spki) === 0);
}

/** spire-agent's IsSVIDExpired: expired when now + 1 s ≥ notAfter. */
export function isSVIDExpired(notAfter: number, now: number): boolean {
  return now + 1000 - notAfter >= 0;
}

const GRACE_PERIOD_THRESHOLD_MS = 12 * 3600_000;

/**
 * spire-agent's ShouldRotateX509: expired, or ttl ≤ availability_target (+0–10 min jitter) when
 * the lifetime leaves more than 12 h beyond the target, or ttl ≤ half-life (±10 % jitter).
 */
export function shouldRotateAgentSVID(now: number, notBefore: number, notAfter: number, availabilityTargetMs: number, random: () => number = Math.random): boolean {
  const ttl = notAfter - now;
  if (ttl <= 0) return true;
  const lifetime = notAfter - notBefore;
  if (availabilityTargetMs > 0 && lifetime - availabilityTargetMs > GRACE_PERIOD_THRESHOLD_MS) {
    if (ttl <= availabilityTargetMs + random() * 10 * 60_000) return true;
  }
  const half = lifetime / 2;
  const delta = half / 10;
  return ttl <= half - delta + random() * 2 * delta;
}

/** A join_token agent ID embeds the token: logs show a fingerprint in its place. */
export function loggableAgentId(id: string): string {
  const m = /^(spiffe:\/\/[^/]+\/spire\/agent\/join_token\/)(.+)$/.exec(id);
  return m ? `${m[1]}<token sha256:${tokenFingerprint(m[2] as string)}>` : id;
}

/** Whether a certificate of `chain` was issued (and signed) by one of `authorities` (spire-agent's IsSignedByRoot). */
export function chainsToAny(chain: readonly Uint8Array[], authorities: readonly Uint8Array[]): boolean {
  const auths = authorities.map((a) => new X509Certificate(a));
  for (const der of chain) {
    const cert = new X509Certificate(der);
    if (auths.some((a) => cert.checkIssued(a) && cert.verify(a.publicKey))) return true;
  }
  return false;
}
