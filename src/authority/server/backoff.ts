/**
 * spire-agent's backoff (pkg/common/backoff over cenkalti/backoff): start at the interval, grow
 * ×1.5 per failure up to a cap, each wait jittered by ±10 %. Reset after a success. The random
 * source is injectable so tests can pin it.
 */
export class Backoff {
  private current: number;

  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {
    this.current = initialMs;
  }

  reset(): void {
    this.current = this.initialMs;
  }

  next(): number {
    const base = this.current;
    const delta = 0.1 * base;
    const wait = base - delta + this.random() * (2 * delta);
    this.current = Math.min(this.maxMs, base * 1.5);
    return Math.round(wait);
  }
}

/** The sync loop's cap: min(8 min, 48 × sync_interval), as spire-agent's manager sets it. */
export function syncBackoffMaxMs(syncIntervalMs: number): number {
  return Math.min(8 * 60_000, 48 * syncIntervalMs);
}
