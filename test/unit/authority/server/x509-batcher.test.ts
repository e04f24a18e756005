/**
 * X509Batcher: CSRs that a workload waits for (urgent, or expedited out of the queue) go out in
 * a call of their own at once, even while a wave batch is in flight, instead of behind it; a wave
 * goes out in small calls, one at a time. The
 * server is a FAKE grpc client whose BatchNewX509SVID answers only when the test releases it.
 */
import { describe, expect, it } from 'vitest';
import type * as grpc from '@grpc/grpc-js';
import { systemClock } from '../../../../src/clock.js';
import { MAX_BATCH as CODE_MAX_BATCH, WAVE_BATCH as CODE_WAVE_BATCH, X509Batcher } from '../../../../src/authority/server/x509-batcher.js';
import { TestCA } from '../../../helpers/test-ca.js';

/**
 * Pinned here, not taken from the code under test. spire-server v1.13.3 admits at most 500 CSRs
 * per client IP in one BatchNewX509SVID call: `SignLimitPerIP = 500` in
 * pkg/server/api/limits/limits.go is the burst of that RPC's per-IP limiter
 * (pkg/server/endpoints/middleware.go), and a larger call fails with ResourceExhausted "rate (N)
 * exceeds burst size (500)" (pkg/server/api/middleware/ratelimit.go).
 */
const MAX_BATCH = 500;
/** A wave's call size: behind 50 CSRs, at the server's 500 CSRs a second, an urgent call waits at most 0.1 s. */
const WAVE_BATCH = 50;

interface HeldCall {
  ids: string[];
  release(): void;
}

async function setup() {
  const ca = await TestCA.create('example.org');
  const calls: HeldCall[] = [];
  const client = {
    BatchNewX509SVID(req: { params: { entry_id: string }[] }, _md: unknown, _opts: unknown, cb: (err: null, res: unknown) => void) {
      const ids = req.params.map((p) => p.entry_id);
      calls.push({
        ids,
        release: () => cb(null, { results: ids.map(() => ({ status: { code: 0 }, svid: { cert_chain: [ca.der()] } })) }),
      });
      return {};
    },
  };
  const batcher = new X509Batcher({ client: () => client as unknown as grpc.Client, clock: systemClock, onCall: () => {} });
  return { batcher, calls };
}

const tick = (ms = 40) => new Promise((r) => setTimeout(r, ms));
const csr = new Uint8Array([0x30, 0]);

describe('X509Batcher priority for waiting workloads', () => {
  it('sends an expedited CSR at once while a wave batch is in flight, and the rest after that batch', async () => {
    const { batcher, calls } = await setup();
    const done = new Set<string>();
    const all = Array.from({ length: 120 }, (_, i) => batcher.sign(`e${i}`, csr).then(() => done.add(`e${i}`)));
    await tick();
    expect(calls.map((c) => c.ids.length)).toEqual([WAVE_BATCH]);
    expect(batcher.expedite('e119')).toBe(true);
    expect(batcher.expedite('e0')).toBe(false); // already sent in the first batch
    await tick();
    expect(calls.map((c) => c.ids)).toEqual([calls[0]!.ids, ['e119']]);
    calls[1]!.release();
    await tick();
    expect(done.has('e119')).toBe(true);
    expect(done.size).toBe(1);
    calls[0]!.release();
    await tick();
    expect(calls.map((c) => c.ids.length)).toEqual([WAVE_BATCH, 1, WAVE_BATCH]);
    calls[2]!.release();
    await tick();
    expect(calls.map((c) => c.ids.length)).toEqual([WAVE_BATCH, 1, WAVE_BATCH, 19]);
    calls[3]!.release();
    await Promise.all(all);
    expect(done.size).toBe(120);
  });

  it("the batch sizes are spire-server's 500-CSR cap and a 50-CSR wave call", () => {
    expect(CODE_MAX_BATCH).toBe(MAX_BATCH);
    expect(CODE_WAVE_BATCH).toBe(WAVE_BATCH);
  });

  it('sends a wave 50 CSRs per call, one call at a time (the server admits 500 CSRs a second per IP), and urgent CSRs up to 500 a call', async () => {
    const { batcher, calls } = await setup();
    const wave = Array.from({ length: 3 * WAVE_BATCH }, (_, i) => batcher.sign(`w${i}`, csr));
    await tick();
    expect(calls.map((c) => c.ids.length)).toEqual([WAVE_BATCH]);
    const urgent = Array.from({ length: MAX_BATCH + 10 }, (_, i) => batcher.sign(`u${i}`, csr, true));
    await tick();
    expect(calls.map((c) => c.ids.length)).toEqual([WAVE_BATCH, MAX_BATCH, 10]);
    for (let i = 0; i < 4; i++) {
      calls[i]!.release();
      await tick();
    }
    expect(calls.map((c) => c.ids.length)).toEqual([WAVE_BATCH, MAX_BATCH, 10, WAVE_BATCH, WAVE_BATCH]);
    calls[4]!.release();
    await Promise.all([...wave, ...urgent]);
  });

  it('sends urgent CSRs that arrive together in one call, without waiting for the batch in flight', async () => {
    const { batcher, calls } = await setup();
    const wave = Array.from({ length: 10 }, (_, i) => batcher.sign(`w${i}`, csr));
    await tick();
    const urgent = [batcher.sign('u1', csr, true), batcher.sign('u2', csr, true)];
    await tick();
    expect(calls.map((c) => c.ids)).toEqual([calls[0]!.ids, ['u1', 'u2']]);
    calls[1]!.release();
    await Promise.all(urgent);
    calls[0]!.release();
    await Promise.all(wave);
  });

  it('rejects queued urgent CSRs on close', async () => {
    const { batcher } = await setup();
    const p = batcher.sign('u', csr, true);
    batcher.close();
    await expect(p).rejects.toMatchObject({ code: 'closed' });
  });
});
