/**
 * retry_bootstrap's schedule against spire-agent v1.13.3 (pkg/agent/agent.go with
 * pkg/common/backoff over cenkalti/backoff: 5 s start, ×1.5, ±10 %, at most 24 × 5 s per wait, stop
 * when the next wait would pass the elapsed limit; PermissionDenied final), and its logging: one line
 * per change of state, not one per retry.
 */
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { BOOTSTRAP_MAX_ELAPSED_MS, REBOOTSTRAP_MAX_ELAPSED_MS, failureKind, retryBootstrap } from '../../../../src/authority/server/bootstrap-retry.js';
import type { Clock } from '../../../../src/clock.js';
import { FakeClock } from '../../../helpers/fake-clock.js';
import { memoryLogger } from '../../../helpers/request-path.js';

/** A fake clock that records each wait asked for. */
class RecordingClock extends FakeClock implements Clock {
  readonly waits: number[] = [];
  override setTimer(ms: number, fn: () => void): () => void {
    this.waits.push(ms);
    return super.setTimer(ms, fn);
  }
}

const status = (code: grpc.status, details: string) => Object.assign(new Error(`${code} ${grpc.status[code]}: ${details}`), { code, details });
const flush = () => new Promise((r) => setImmediate(r));

/** Runs retryBootstrap over `failures` (then success unless `succeed` is false), firing each wait. */
async function run(failures: Error[], o: { maxElapsedMs?: number; random?: number; succeed?: boolean } = {}) {
  const clock = new RecordingClock();
  const log = memoryLogger();
  let calls = 0;
  const fn = async () => {
    const err = failures[calls++];
    if (err) throw err;
    if (o.succeed === false) throw new Error('unexpected success');
    return 'svid';
  };
  const result = retryBootstrap(fn, { clock, log, maxElapsedMs: o.maxElapsedMs ?? REBOOTSTRAP_MAX_ELAPSED_MS, signal: new AbortController().signal, random: () => o.random ?? 0.5 });
  let settled: { ok: boolean; value: unknown } | undefined;
  result.then(
    (value) => (settled = { ok: true, value }),
    (value: unknown) => (settled = { ok: false, value }),
  );
  for (let i = 0; i < 10_000 && !settled; i++) {
    await flush();
    if (clock.pendingTimers > 0) clock.advance(clock.waits[clock.waits.length - 1] as number);
  }
  return { settled: settled!, clock, log, calls };
}

describe('retry_bootstrap', () => {
  it('waits as spire-agent: 5 s ×1.5 per failure, capped at 2 min (24 × 5 s)', async () => {
    const fail = Array.from({ length: 12 }, () => status(grpc.status.UNAVAILABLE, 'connection refused'));
    const { settled, clock, calls } = await run(fail);
    expect(settled).toEqual({ ok: true, value: 'svid' });
    expect(calls).toBe(13);
    expect(clock.waits).toEqual([5000, 7500, 11250, 16875, 25313, 37969, 56953, 85430, 120000, 120000, 120000, 120000]);
  });

  it('jitters each wait by ±10 %', async () => {
    const one = [status(grpc.status.UNAVAILABLE, 'down')];
    expect((await run(one, { random: 0 })).clock.waits).toEqual([4500]);
    expect((await run(one, { random: 0.999999 })).clock.waits).toEqual([5500]);
  });

  it('without rebootstrap, gives up when the next wait would pass 1 minute since the first attempt', async () => {
    const fail = Array.from({ length: 20 }, () => status(grpc.status.UNAVAILABLE, 'down'));
    const { settled, clock, calls } = await run(fail, { maxElapsedMs: BOOTSTRAP_MAX_ELAPSED_MS });
    // 5 + 7.5 + 11.25 + 16.875 = 40.6 s; the next wait (25.3 s) would end past 60 s.
    expect(clock.waits).toEqual([5000, 7500, 11250, 16875]);
    expect(calls).toBe(5);
    expect(settled.ok).toBe(false);
    expect((settled.value as Error).message).toMatch(/down/);
  });

  it('a refusal (PermissionDenied) and errors only a config change can fix are final at once', async () => {
    const denied = status(grpc.status.PERMISSION_DENIED, 'failed to attest: http_challenge: the requested hostname is not allowed to connect');
    // As the session hands it over: its own error, the server's status as the cause.
    const wrapped = Object.assign(new Error('session: node attestation with http_challenge failed', { cause: denied }), { code: 'attestation_failed' });
    for (const err of [denied, wrapped, Object.assign(new Error('bad'), { code: 'node_attestor_config' })]) {
      const { settled, clock, calls } = await run([err], { succeed: false });
      expect(settled).toEqual({ ok: false, value: err });
      expect(calls).toBe(1);
      expect(clock.waits).toEqual([]);
    }
  });

  it('logs one line per change of state: first failure, a different failure, success; repeats at debug', async () => {
    const refused = () => status(grpc.status.UNAVAILABLE, 'connection refused');
    const chal = (nonce: string) => Object.assign(new Error(`nodeattestor(http_challenge): could not listen on port 8080: listen EADDRINUSE: address already in use "${nonce}"`), { code: 'node_attestor_listen' });
    const { settled, log } = await run([refused(), refused(), refused(), refused(), chal('a'), chal('b'), chal('c'), refused()]);
    expect(settled.ok).toBe(true);
    const lines = log.lines.filter((l) => l.level !== 'debug').map((l) => [l.level, l.msg, l.fields['attempt'], l.fields['error']]);
    expect(lines).toEqual([
      ['warn', 'Failed to retrieve attestation result', 1, expect.stringMatching(/connection refused/)],
      ['warn', 'Failed to retrieve attestation result', 5, expect.stringMatching(/EADDRINUSE/)],
      ['warn', 'Failed to retrieve attestation result', 8, expect.stringMatching(/connection refused/)],
      ['info', 'Node attestation succeeded after failed attempts', 9, undefined],
    ]);
    const debug = log.lines.filter((l) => l.level === 'debug');
    expect(debug.map((l) => l.fields['attempt'])).toEqual([2, 3, 4, 6, 7]);
    expect(debug.every((l) => l.fields['repeated'] === true && typeof l.fields['retry_interval'] === 'string')).toBe(true);
  });

  it('a wrapped failure that is not a refusal is retried', async () => {
    const wrapped = Object.assign(new Error('session: node attestation failed', { cause: status(grpc.status.INVALID_ARGUMENT, 'port 1 is not allowed') }), { code: 'attestation_failed' });
    const { settled, calls } = await run([wrapped]);
    expect(settled.ok).toBe(true);
    expect(calls).toBe(2);
  });

  it('succeeding at once logs nothing', async () => {
    const { settled, log } = await run([]);
    expect(settled.ok).toBe(true);
    expect(log.lines).toEqual([]);
  });

  it('failures differ by code and wording, not by the values (nonce, port, duration) they carry', () => {
    expect(failureKind(status(14, 'timed out after 30000ms'))).toBe(failureKind(status(14, 'timed out after 30001ms')));
    expect(failureKind(new Error('expected nonce "abc" but got "def"'))).toBe(failureKind(new Error('expected nonce "xyz" but got "uvw"')));
    expect(failureKind(status(14, 'down'))).not.toBe(failureKind(status(3, 'down')));
    expect(failureKind(new Error('connection refused'))).not.toBe(failureKind(new Error('no route to host')));
  });

  it('a wait leaves no listener behind on the signal', async () => {
    const clock = new RecordingClock();
    const ac = new AbortController();
    let added = 0;
    let removed = 0;
    const add = ac.signal.addEventListener.bind(ac.signal);
    const remove = ac.signal.removeEventListener.bind(ac.signal);
    ac.signal.addEventListener = ((...a: Parameters<typeof add>) => (added++, add(...a))) as typeof add;
    ac.signal.removeEventListener = ((...a: Parameters<typeof remove>) => (removed++, remove(...a))) as typeof remove;
    let n = 0;
    const p = retryBootstrap(
      async () => {
        if (n++ < 3) throw status(14, 'down');
        return 1;
      },
      { clock, log: memoryLogger(), maxElapsedMs: REBOOTSTRAP_MAX_ELAPSED_MS, signal: ac.signal },
    );
    for (let i = 0; i < 100 && n < 4; i++) {
      await flush();
      if (clock.pendingTimers > 0) clock.advance(200_000);
    }
    await expect(p).resolves.toBe(1);
    expect(added).toBe(3);
    expect(removed).toBe(3);
  });

  it('an abort during a wait ends the retries with the abort', async () => {
    const clock = new RecordingClock();
    const ac = new AbortController();
    const p = retryBootstrap(() => Promise.reject(status(14, 'down')), { clock, log: memoryLogger(), maxElapsedMs: REBOOTSTRAP_MAX_ELAPSED_MS, signal: ac.signal });
    p.catch(() => undefined);
    await expect.poll(() => clock.pendingTimers).toBe(1);
    ac.abort(new Error('stopping'));
    await expect(p).rejects.toThrow(/stopping/);
  });
});
