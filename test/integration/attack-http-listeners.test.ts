/**
 * Attacks on the agent's TCP listeners, the Prometheus exposition (telemetry { Prometheus }) and
 * the health probes (health_checks), by another local user (uid 65534, in a process of its own,
 * test/attack/http-attacker.mjs): slowloris, a connection flood past the agent's open-file limit,
 * huge request lines, headers and bodies, garbage and half-closed sockets, and pipelined
 * keep-alive requests. Both ports are attacked at once.
 *
 * While each attack runs, and after it, the agent stays up, a workload gets its X.509-SVID over
 * the Workload API, and a scrape of /metrics and a GET of the live path answer within a few
 * seconds; afterwards the agent's open fds and anonymous RSS are back near their baseline. The
 * agent runs with an open-file limit of 1,024, so running it out of descriptors is within the
 * attacker's reach. Each attack lasts HTTP_ATTACK_SECONDS (4 s unless set).
 *
 * On node:http (before src/net/bounded-http-server.ts) these failed: the flood crashed the agent
 * (a second EMFILE on the health listener had no 'error' listener) or left scrapes and probes
 * refused while it held every descriptor; pipelined keep-alive requests took the agent's RSS from
 * 54 to 361 MiB and a scrape 7 s.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, REPO, cli, collect, sleep, uidEntry } from '../helpers/agent-process.js';
import { MiB, NOFILE, RSS_SLACK } from '../helpers/attack-limits.js';
import { freePort } from '../helpers/spire/proc.js';

const ATTACKER = { uid: 65534, gid: 65534 };
const WORKLOAD = { uid: 1703, gid: 1703 };
const ATTACK = join(REPO, 'test/attack/http-attacker.mjs');
const SECONDS = Number(process.env.HTTP_ATTACK_SECONDS ?? 4);
/** How long a legitimate scrape or probe may take while under attack. */
const ANSWER_MS = Number(process.env.HTTP_ANSWER_MS ?? 3000);

interface Totals {
  kind: string;
  opened: number;
  refused: number;
  closedByAgent: number;
  responses: number;
  sent: number;
  errors: Record<string, number>;
}

let agent: AgentProcess;
let metricsPort: number;
let healthPort: number;
let baseline = { fds: 0, rss: 0 };

beforeAll(async () => {
  metricsPort = await freePort();
  healthPort = await freePort();
  agent = await AgentProcess.start({
    entries: [uidEntry('/w', WORKLOAD.uid)],
    nofile: NOFILE,
    topLevel: `telemetry {
  Prometheus {
    host = "127.0.0.1"
    port = ${metricsPort}
  }
}
health_checks {
  listener_enabled = true
  bind_address = "127.0.0.1"
  bind_port = "${healthPort}"
  live_path = "/live"
  ready_path = "/ready"
}`,
  });
  const quiet = await legit();
  baseline = { fds: fdCount(), rss: rssKiB() };
  console.log(`no attack  fds ${baseline.fds}   anonymous RSS ${(baseline.rss / MiB).toFixed(0)} MiB   Workload API ${quiet.fetchMs} ms, scrape ${quiet.scrapeMs} ms, live ${quiet.liveMs} ms`);
});
afterAll(async () => agent?.stop());

const fdCount = (): number => readdirSync(`/proc/${agent.proc.pid}/fd`).length;
/** The agent's own memory: anonymous RSS, not the node binary's shared file pages. */
const rssKiB = (): number => Number(/RssAnon:\s+(\d+)/.exec(readFileSync(`/proc/${agent.proc.pid}/status`, 'utf8'))![1]);
const alive = (): boolean => agent.proc.exitCode === null && agent.proc.signalCode === null;
const lastLines = (): string => (alive() ? '' : `\nthe agent is gone; its last lines:\n${agent.logs.slice(-40).join('\n')}`);

/**
 * A GET as Prometheus or a kubelet would send it, which must answer 200 within ANSWER_MS. A connection
 * the flood's eviction closed before its request was read is tried again, at most twice, as
 * Prometheus and the kubelet try again at their next interval; all three closed fails the test.
 */
async function get(port: number, path: string): Promise<{ body: string; ms: number }> {
  const t = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(ANSWER_MS) });
      expect(res.status).toBe(200);
      return { body: await res.text(), ms: Date.now() - t };
    } catch (err) {
      const why = `${(err as Error).message} ${String(((err as Error).cause as Error | undefined)?.message ?? '')}`;
      if (attempt < 3 && /other side closed|ECONNRESET/.test(why) && Date.now() - t < ANSWER_MS) continue;
      throw new Error(`GET :${port}${path} failed after ${Date.now() - t} ms (attempt ${attempt}): ${why}${lastLines()}`);
    }
  }
}

/** Everything a legitimate client does: a Workload API fetch, a scrape, a liveness probe. */
async function legit(): Promise<{ fetchMs: number; scrapeMs: number; liveMs: number }> {
  const t = Date.now();
  const [r, scrape, live] = await Promise.all([
    cli(['api', 'fetch', 'x509', '-socketPath', agent.socketPath, '-timeout', '20s'], WORKLOAD, 30_000).then((x) => ({ ...x, ms: Date.now() - t })),
    get(metricsPort, '/metrics'),
    get(healthPort, '/live'),
  ]);
  expect(r.stdout, `${r.stderr}${lastLines()}`).toContain('spiffe://example.org/w');
  expect(scrape.body).toContain('spire_agent_started');
  expect(live.body).toBe('{"live":true}');
  return { fetchMs: r.ms, scrapeMs: scrape.ms, liveMs: live.ms };
}

/** Waits until fds and RSS are back near the baseline. */
async function settle(): Promise<{ fds: number; rss: number }> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && (fdCount() > baseline.fds + 4 || rssKiB() - baseline.rss >= RSS_SLACK)) await sleep(200);
  return { fds: fdCount(), rss: rssKiB() };
}

async function attack(kind: string, conns: number): Promise<Totals> {
  const before = { fds: fdCount(), rss: rssKiB() };
  let peak = { ...before };
  const sampler = setInterval(() => {
    try {
      if (alive()) peak = { fds: Math.max(peak.fds, fdCount()), rss: Math.max(peak.rss, rssKiB()) };
    } catch {
      // The agent exited between the check and the read; the test says so below.
    }
  }, 100);
  const child = spawn(process.execPath, [ATTACK, kind, `${metricsPort},${healthPort}`, '--seconds', String(SECONDS), '--conns', String(conns)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    ...ATTACKER,
  });
  const running = collect(child, (SECONDS + 30) * 1000);
  let during: Awaited<ReturnType<typeof legit>>;
  try {
    // In the middle of the attack, with every attacking connection open: everyone else is still served.
    await sleep((SECONDS * 1000) / 2);
    during = await legit();
  } catch (err) {
    // A failed check must not leave the attack running into the next test.
    child.kill('SIGKILL');
    clearInterval(sampler);
    throw err;
  }
  const r = await running;
  clearInterval(sampler);
  expect(r.code, r.stderr).toBe(0);
  const totals = JSON.parse(r.stdout) as Totals;
  expect(alive(), agent.logs.slice(-20).join('\n')).toBe(true);
  const after = await settle();
  const { kind: _, ...shown } = totals;
  console.log(
    `${kind.padEnd(10)} fds ${before.fds} → ${peak.fds} → ${after.fds}   anonymous RSS ${(before.rss / MiB).toFixed(0)} → ${(peak.rss / MiB).toFixed(0)} → ${(after.rss / MiB).toFixed(0)} MiB   ` +
      `during: Workload API ${during.fetchMs} ms, scrape ${during.scrapeMs} ms, live ${during.liveMs} ms   attacker ${JSON.stringify(shown)}`,
  );
  expect(after.fds).toBeLessThanOrEqual(baseline.fds + 4);
  expect(after.rss - baseline.rss).toBeLessThan(RSS_SLACK);
  await legit();
  return totals;
}

const TIMEOUT = (SECONDS + 60) * 1000;

describe('attacks on the metrics and health HTTP listeners from another local user', () => {
  it('slowloris: hundreds of requests that never finish their headers', async () => {
    const t = await attack('slowloris', 300);
    expect(t.opened).toBeGreaterThanOrEqual(600);
  }, TIMEOUT);

  it('flood: more connections than the agent has file descriptors', async () => {
    const t = await attack('flood', 1200);
    // The attacker reached past the agent's open-file limit.
    expect(t.opened + t.refused).toBeGreaterThan(NOFILE);
  }, TIMEOUT);

  it('huge: a 10 MB request line, a 10 MB header, and a chunked body that never ends', async () => {
    const t = await attack('huge', 6);
    // Each oversized request is cut off long before its 10 MB are in.
    expect(t.closedByAgent).toBeGreaterThan(0);
  }, TIMEOUT);

  it('garbage: random bytes and half-closed sockets', async () => {
    const t = await attack('garbage', 60);
    expect(t.opened).toBeGreaterThan(120);
  }, TIMEOUT);

  it('keep-alive: thousands of pipelined requests per connection, half never reading the answers', async () => {
    const t = await attack('keepalive', 20);
    expect(t.responses).toBeGreaterThan(0);
  }, TIMEOUT);
});
