/**
 * The agent SVID rotator's retry schedule and logging against spire-agent v1.13.3's rotator
 * (pkg/agent/svid/rotator.go: backoff from 5 s, ×1.5, ±10 %, at most 2 min, reset by any check
 * without an error), with one log line per change of state instead of one per failure.
 */
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { AgentRotation } from '../../../../src/authority/server/agent-rotation.js';
import type { AgentSVIDState } from '../../../../src/authority/server/agent-svid.js';
import { FakeClock } from '../../../helpers/fake-clock.js';
import { memoryLogger } from '../../../helpers/request-path.js';

class RecordingClock extends FakeClock {
  readonly waits: number[] = [];
  override setTimer(ms: number, fn: () => void): () => void {
    this.waits.push(ms);
    return super.setTimer(ms, fn);
  }
}

/**
 * Waits (in real time, at most 5 s) until the rotator has set a timer beyond the first `seen`. A fixed
 * number of event-loop turns was not enough under load: a failure's path may load a module lazily,
 * which is file I/O, and the loop then advanced the clock before the next timer existed.
 */
const nextTimer = async (clock: RecordingClock, seen: number): Promise<number> => {
  for (let i = 0; i < 5_000 && clock.waits.length <= seen; i++) await new Promise((r) => setTimeout(r, 1));
  return clock.waits.length;
};

describe('agent SVID rotation retries', () => {
  it('backs off as spire-agent (5 s ×1.5 up to 2 min), logs each change of state once, and starts over after success', async () => {
    const clock = new RecordingClock();
    const log = memoryLogger();
    // Due for rotation for the whole test, whatever the rotation jitter draws (Math.random in
    // shouldRotateAgentSVID: due from half its life ±10 %): 2,000 s left of 5,600 s is past 55 %, and
    // the ~10 min the test advances never reach its expiry. (With 3,000 s left of 6,600 s, a check
    // fell inside the jitter about one run in five and was "not due", which reset the backoff.)
    let svid = { notBefore: clock.now() - 3_600_000, notAfter: clock.now() + 2_000_000, reattestable: true } as AgentSVIDState;
    const outcomes: (Error | undefined)[] = [
      ...Array.from({ length: 10 }, () => Object.assign(new Error('14 UNAVAILABLE: connection refused'), { code: grpc.status.UNAVAILABLE, details: 'connection refused' })),
      Object.assign(new Error('nodeattestor(http_challenge): could not listen on port 8080'), { code: 'node_attestor_listen' }),
      undefined,
    ];
    let calls = 0;
    const rotation = new AgentRotation({
      clock,
      log,
      availabilityTargetMs: 0,
      current: () => svid,
      renew: async () => {},
      reattest: async () => {
        const o = outcomes[calls++];
        if (o) throw o;
        // Renewed: not due again for a while.
        svid = { notBefore: clock.now(), notAfter: clock.now() + 3_600_000, reattestable: true } as AgentSVIDState;
      },
      deleteSVID: async () => {},
      fatal: () => {},
      random: () => 0.5,
    });
    rotation.start();
    let seen = 0;
    for (let i = 0; i < 40 && calls < outcomes.length; i++) {
      seen = await nextTimer(clock, seen);
      clock.advance(clock.waits[clock.waits.length - 1] as number);
    }
    seen = await nextTimer(clock, seen);
    clock.advance(clock.waits[clock.waits.length - 1] as number);
    await nextTimer(clock, seen);
    rotation.stop();
    expect(calls).toBe(12);
    // After each of the 11 failures the wait grows; after the success and the next quiet check, 5 s again.
    expect(clock.waits.slice(0, 11)).toEqual([5000, 7500, 11250, 16875, 25313, 37969, 56953, 85430, 120000, 120000, 120000]);
    expect(clock.waits.slice(11)).toEqual([5000, 5000]);
    const lines = log.lines.filter((l) => l.level !== 'debug').map((l) => [l.level, l.msg, l.fields['attempt']]);
    expect(lines).toEqual([
      ['error', 'Could not reattest agent', 1],
      ['error', 'Could not reattest agent', 11],
      ['info', 'Could reattest agent after failed attempts', 12],
    ]);
    expect(log.lines.filter((l) => l.level === 'debug' && l.fields['repeated'] === true)).toHaveLength(9);
  });
});
