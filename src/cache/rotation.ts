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

/** JWT-SVIDs are re-minted past half of their lifetime. */
export function jwtStillFresh(now: number, issuedAt: number, expiresAt: number): boolean {
  return now < issuedAt + (expiresAt - issuedAt) / 2;
}
