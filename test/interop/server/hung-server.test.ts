/**
 * The real spire-server v1.13.3 hangs: stopped with SIGSTOP, it keeps its port and connections
 * (the kernel still accepts and acknowledges) but answers nothing, as a paused VM or a stuck load
 * balancer. The SVIDs are past their rotation time, still valid, and the agent's renewal is stuck
 * with the server. A new workload process must get its cached SVID at once, and after SIGCONT
 * the renewal must reach an open stream within seconds. Both agents run the same scenario; what
 * each does is printed (`hung-server:` lines) and the README's "Differences from spire-agent"
 * table has the row for what differs. The same with a fake server: test/unit/cache/hung-server.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  UID_A,
  UID_B,
  Watcher,
  agentConfFor,
  fetchX509,
  goClientRun,
  sleep,
  startAgent,
  startSpireServer,
  waitForSvid,
  type SpireBinaries,
  type SpireServer,
  type X509Result,
} from '../../helpers/spire/index.js';
import { Cleanup, KINDS, id, plan, tag, uidEntry } from './fixture.js';

let bins: SpireBinaries;
let server: SpireServer;
const cleanup = new Cleanup();
/** spire-server backdates notBefore 10 s: spire-agent rotates at 25 s, spiffe-agent at 30 s (half of what it was issued for). */
const SVID_TTL_S = 60;
/** Fetched a few seconds after the agent starts, so half its life is over by the time the SVIDs are due. */
const JWT_TTL_S = 40;
const AUD = 'spiffe://example.org/hung-aud';
/** "At once": a go-spiffe client on the same host; spiffe-agent answers from memory. */
const AT_ONCE_MS = 1_000;

beforeAll(async () => {
  bins = plan.require();
  server = cleanup.add(await startSpireServer({ bins, cacheReloadInterval: '1s' }));
  // A failed test must not leave the shared server stopped.
  cleanup.defer(() => server.daemon.proc.kill('SIGCONT'));
});
afterAll(() => cleanup.run());

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; r: T }> {
  const t0 = performance.now();
  const r = await fn();
  return { ms: Math.round(performance.now() - t0), r };
}

describe.skipIf(plan.skip).each(KINDS)('SPIRE server hung with SIGSTOP: %s', (kind) => {
  it('a new workload gets the cached SVID at once while the renewal hangs; after SIGCONT the renewal reaches an open stream', async () => {
    const t = tag(kind, 'hung');
    const alias = id(`/node/${t}`);
    const [a, b] = [id(`/${t}/a`), id(`/${t}/b`)];
    await server.createEntries([
      uidEntry(a, alias, UID_A, { x509_svid_ttl: SVID_TTL_S, jwt_svid_ttl: JWT_TTL_S }),
      uidEntry(b, alias, UID_B, { x509_svid_ttl: SVID_TTL_S }),
    ]);
    const agent = cleanup.add(await startAgent(kind, bins, await agentConfFor(server, { joinToken: await server.generateToken(alias) }, t)));
    await waitForSvid(agent, UID_A, a);
    const watch = cleanup.add(await Watcher.open(agent, UID_A));
    const firstLine = await watch.until('first update', (l) => !!l.svids?.some((s) => s.id === a));
    const seenAt = Date.now();
    const first = firstLine.svids!.find((s) => s.id === a)!;
    const [notBefore, notAfter] = [Date.parse(first.notBefore), Date.parse(first.notAfter)];
    // spire-agent rotates at half-life by the certificate, spiffe-agent by when it got it: the
    // server stops before the first of the two and the workloads ask after the second.
    const halves = [(notBefore + notAfter) / 2, (Math.min(seenAt, notAfter) + notAfter) / 2];
    const dueBy = Math.max(...halves);
    const jwtBefore = await goClientRun(agent, UID_A, ['fetch', '-audience', AUD, '-timeout', '10s']);
    expect(jwtBefore.ok, JSON.stringify(jwtBefore)).toBe(true);
    const jwtIat = Number(jwtBefore.jwtSvid.claims.iat) * 1000;
    const jwtExp = Number(jwtBefore.jwtSvid.claims.exp) * 1000;
    // uid B never asked: its SVID is only in the agent's cache (both agents sign ahead for every entry).
    expect(Date.now(), `set-up took too long: the SVIDs must still be fresh when the server stops\n${agent.logTail()}`).toBeLessThan(Math.min(...halves) - 1_000);

    server.daemon.proc.kill('SIGSTOP');
    const stoppedAt = Date.now();
    const linesAtStop = watch.lines.length;
    let resumed = false;
    try {
      // The renewals are due and go to a server that never answers.
      const askAt = Math.max(dueBy + 3_000, (jwtIat + jwtExp) / 2 + 1_000);
      await sleep(askAt - Date.now());
      expect(Date.now() + 10_000, 'the SVIDs must still be valid when the workloads ask').toBeLessThan(notAfter);
      expect(Date.now() + 5_000).toBeLessThan(jwtExp);
      // New processes, all at once: uid B's X.509 (never asked before), uid A's X.509 and JWT.
      const [newB, newA, jwt] = await Promise.all([
        timed(() => fetchX509(agent, UID_B, { timeoutS: 10 })),
        timed(() => fetchX509(agent, UID_A, { timeoutS: 10 })),
        timed(() => goClientRun(agent, UID_A, ['fetch', '-audience', AUD, '-timeout', '10s'])),
      ]);
      const summary = (x: { ms: number; r: X509Result }) => (x.r.ok ? { ms: x.r.fetchMs, serial: x.r.svids[0]?.serial } : { ms: x.ms, failed: x.r.code ?? x.r.error });
      const measured = {
        kind,
        hungForMs: Date.now() - stoppedAt,
        newWorkloadX509: summary(newB),
        cachedWorkloadX509: summary(newA),
        jwt: jwt.r.ok ? { ms: jwt.ms, cached: Number(jwt.r.jwtSvid.claims.iat) * 1000 === jwtIat } : { ms: jwt.ms, failed: `${jwt.r.step}: ${jwt.r.code}` },
      };
      console.log(`hung-server: ${JSON.stringify(measured)}`);

      // What both agents do: serve the cached X.509-SVIDs at once.
      for (const [what, x, want] of [['uid B', newB, b], ['uid A', newA, a]] as const) {
        expect(x.r.ok, `${what} during the hang: ${JSON.stringify(x.r)}\n${agent.logTail()}`).toBe(true);
        expect(x.r.svids.map((s) => s.id)).toEqual([want]);
        expect(x.r.fetchMs, `${what}: FetchX509SVID took ${x.r.fetchMs} ms`).toBeLessThan(AT_ONCE_MS);
        expect(Date.parse(x.r.svids[0]!.notAfter)).toBeGreaterThan(Date.now());
      }
      if (kind === 'spiffe-agent') {
        // spire-agent v1.13.3 waits for NewJWTSVID until the caller's deadline (see the README's differences).
        expect(jwt.r.ok, `JWT-SVID during the hang: ${JSON.stringify(jwt.r)}\n${agent.logTail()}`).toBe(true);
        expect(Number(jwt.r.jwtSvid.claims.iat) * 1000, 'the cached JWT-SVID').toBe(jwtIat);
        expect(jwt.ms, 'JWT-SVID with a valid one cached').toBeLessThan(2 * AT_ONCE_MS);
      }
      expect(watch.lines.filter((l) => l.error), 'the open stream stays open').toEqual([]);
      expect(watch.lines.slice(linesAtStop).filter((l) => l.svids?.some((s) => s.id === a && s.serial !== first.serial)), 'no renewal while stopped').toEqual([]);
      expect(agent.daemon.alive(), agent.logTail()).toBe(true);
    } finally {
      server.daemon.proc.kill('SIGCONT');
      resumed = true;
    }
    const resumedAt = Date.now();
    expect(resumed).toBe(true);
    const rotated = await watch.until(
      'the renewed SVID of /a on the open stream after SIGCONT',
      (l) => !!l.svids?.some((s) => s.id === a && s.serial !== first.serial),
      notAfter - Date.now(),
      linesAtStop,
    );
    // until() polls every 100 ms: arrival time to a tenth of a second.
    const recoverMs = Date.now() - resumedAt;
    console.log(`hung-server: ${JSON.stringify({ kind, renewedOnOpenStreamAfterSigcontMs: recoverMs })}`);
    const cur = rotated.svids!.find((s) => s.id === a)!;
    expect(cur.verified, cur.verifyError).toBe(true);
    if (kind === 'spiffe-agent') expect(recoverMs, agent.logTail()).toBeLessThan(8_000);
    await watch.close();
    await agent.destroy();
  }, 240_000);
});
