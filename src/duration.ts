/**
 * Durations as Go writes them ("1h30m", "250ms"), because agent.conf, the CLI flags and the
 * `api` commands' output all follow spire-agent, which uses Go's time.ParseDuration and
 * time.Duration.String(). Used by config and CLI alike, so it sits in the lowest layer.
 */

const DURATION_RE = /^(\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/;
const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go time.ParseDuration, in milliseconds. */
export function parseGoDuration(text: string): number | undefined {
  if (text === '0') return 0;
  if (!DURATION_RE.test(text)) return undefined;
  let total = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) total += Number(m[1]) * (UNIT_MS[m[2]!] ?? 0);
  return total;
}

function fraction(v: bigint, unit: bigint, digits: number): string {
  const whole = v / unit;
  const frac = (v % unit).toString().padStart(digits, '0').replace(/0+$/, '');
  return frac ? `${whole}.${frac}` : `${whole}`;
}

/** Go's time.Duration.String() for a count of nanoseconds. */
export function formatGoDuration(ns: bigint): string {
  if (ns === 0n) return '0s';
  const neg = ns < 0n;
  let v = neg ? -ns : ns;
  let out: string;
  if (v < 1_000n) out = `${v}ns`;
  else if (v < 1_000_000n) out = `${fraction(v, 1_000n, 3)}µs`;
  else if (v < 1_000_000_000n) out = `${fraction(v, 1_000_000n, 6)}ms`;
  else {
    const h = v / 3_600_000_000_000n;
    v -= h * 3_600_000_000_000n;
    const m = v / 60_000_000_000n;
    v -= m * 60_000_000_000n;
    out = `${h > 0n ? `${h}h` : ''}${h > 0n || m > 0n ? `${m}m` : ''}${fraction(v, 1_000_000_000n, 9)}s`;
  }
  return neg ? `-${out}` : out;
}
