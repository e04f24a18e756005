/**
 * When to rotate an SVID: a pure function of its validity window, so tests need
 * only numbers. Default: at half of its lifetime (SPIRE's rule). With
 * availability_target set, the SVID is rotated early enough that it always keeps at
 * least that much validity to ride out an outage: at the earlier of half-life and
 * notAfter − target. An SVID shorter-lived than the target cannot honour it and
 * falls back to half-life rather than rotating in a loop.
 */
export function rotationTime(notBefore: number, notAfter: number, availabilityTargetMs = 0): number {
  const lifetime = notAfter - notBefore;
  const half = notBefore + lifetime / 2;
  if (availabilityTargetMs > 0 && lifetime > availabilityTargetMs) {
    return Math.min(half, notAfter - availabilityTargetMs);
  }
  return half;
}

export function shouldRotate(now: number, notBefore: number, notAfter: number, availabilityTargetMs = 0): boolean {
  return now >= rotationTime(notBefore, notAfter, availabilityTargetMs);
}

/**
 * JWT-SVIDs are re-minted past half of their lifetime, and when the wall clock has gone
 * back before they were issued (validators refuse an iat in the future).
 */
export function jwtStillFresh(now: number, issuedAt: number, expiresAt: number): boolean {
  return now >= issuedAt && now < issuedAt + (expiresAt - issuedAt) / 2;
}

/**
 * Whether a cached X.509-SVID can still be served as is at `now`: before its rotation
 * time and not before its notBefore (after the wall clock went back, it would not
 * verify yet).
 */
export function x509StillFresh(now: number, notBefore: number, rotateAt: number): boolean {
  return now >= notBefore && now < rotateAt;
}
