/**
 * WorkloadAttestation's fan-out over several attestors, and the Semaphore that bounds
 * concurrent attestations. The attestors here are in-test objects implementing our own
 * WorkloadAttestor interface (fakes: no /proc involved; the unix tests cover real processes).
 */
import { describe, expect, it } from 'vitest';
import { AttestationError, Semaphore, WorkloadAttestation } from '../../../src/attestation/workload/attest.js';
import { WorkloadRefusedError, type WorkloadAttestor } from '../../../src/attestation/workload/types.js';
import { toServiceError } from '../../../src/endpoints/status.js';
import { ProcError } from '../../../src/proc/errors.js';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../../src/telemetry/logger.js';
import { nullLogger } from '../../../src/telemetry/logger.js';

interface Line {
  level: string;
  obj: Record<string, unknown>;
  msg: string | undefined;
}

function recordingLogger(lines: Line[] = []): Logger & { lines: Line[] } {
  const at =
    (level: string) =>
    (obj: Record<string, unknown> | string, msg?: string): void => {
      lines.push(typeof obj === 'string' ? { level, obj: {}, msg: obj } : { level, obj, msg });
    };
  const log = { lines, child: () => log, trace: at('trace'), debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return log;
}

const fixed = (name: string, values: string[]): WorkloadAttestor => ({ name, attest: async () => [...values] });
const failing = (name: string, message: string): WorkloadAttestor => ({
  name,
  attest: async () => {
    throw new Error(message);
  },
});
const signal = new AbortController().signal;
const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

describe('WorkloadAttestation: merging', () => {
  it('merges every attestor, typing each value with its attestor name', async () => {
    const wa = new WorkloadAttestation([fixed('unix', ['uid:1000', 'gid:1000']), fixed('k8s', ['ns:default', 'sa:web']), fixed('docker', [])], recordingLogger());
    const r = await wa.attest(42, signal);
    expect(r.failed).toEqual([]);
    expect(r.selectors).toEqual([
      { type: 'unix', value: 'uid:1000' },
      { type: 'unix', value: 'gid:1000' },
      { type: 'k8s', value: 'ns:default' },
      { type: 'k8s', value: 'sa:web' },
    ]);
  });

  it('passes the pid and the abort signal to every attestor', async () => {
    const seen: [string, number, AbortSignal][] = [];
    const spy = (name: string): WorkloadAttestor => ({
      name,
      attest: async (pid, s) => {
        seen.push([name, pid, s]);
        return [];
      },
    });
    const ac = new AbortController();
    await new WorkloadAttestation([spy('a'), spy('b')], recordingLogger()).attest(777, ac.signal);
    expect(seen).toEqual([
      ['a', 777, ac.signal],
      ['b', 777, ac.signal],
    ]);
  });

  it('drops duplicate selectors of one attestor but keeps the same value from different attestors', async () => {
    const wa = new WorkloadAttestation([fixed('unix', ['uid:1', 'uid:1', 'gid:2', 'uid:1']), fixed('other', ['uid:1'])], recordingLogger());
    const r = await wa.attest(1, signal);
    expect(r.selectors).toEqual([
      { type: 'unix', value: 'uid:1' },
      { type: 'unix', value: 'gid:2' },
      { type: 'other', value: 'uid:1' },
    ]);
  });

  it('keeps values that contain further colons whole', async () => {
    const r = await new WorkloadAttestation([fixed('k8s', ['pod-label:app:web'])], recordingLogger()).attest(1, signal);
    expect(r.selectors).toEqual([{ type: 'k8s', value: 'pod-label:app:web' }]);
  });

  it('runs the attestors concurrently, not one after another', async () => {
    let inFlight = 0;
    let max = 0;
    const slow = (name: string): WorkloadAttestor => ({
      name,
      attest: async () => {
        inFlight++;
        max = Math.max(max, inFlight);
        await new Promise((r) => setTimeout(r, 20));
        inFlight--;
        return [name];
      },
    });
    await new WorkloadAttestation([slow('a'), slow('b'), slow('c')], recordingLogger()).attest(1, signal);
    expect(max).toBe(3);
  });
});

describe('WorkloadAttestation: failures', () => {
  it('logs a failing attestor and omits its selectors while the others succeed', async () => {
    const log = recordingLogger();
    const wa = new WorkloadAttestation([fixed('unix', ['uid:5']), failing('k8s', 'kubelet unreachable'), fixed('docker', [])], log);
    const r = await wa.attest(99, signal);
    expect(r.selectors).toEqual([{ type: 'unix', value: 'uid:5' }]);
    expect(r.failed).toEqual(['k8s']);
    const warns = log.lines.filter((l) => l.level === 'warn');
    expect(warns).toHaveLength(1);
    expect(warns[0]!.obj).toMatchObject({ attestor: 'k8s', pid: 99, error: 'kubelet unreachable' });
  });

  it('treats "not applicable" (zero selectors) as success, so one success among failures is enough', async () => {
    const r = await new WorkloadAttestation([failing('unix', 'gone'), fixed('docker', [])], recordingLogger()).attest(3, signal);
    expect(r).toEqual({ selectors: [], failed: ['unix'] });
  });

  it('fails only when every attestor fails, naming each of them', async () => {
    const log = recordingLogger();
    const err = await new WorkloadAttestation([failing('unix', 'x'), failing('k8s', 'y')], log)
      .attest(7, signal)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AttestationError);
    expect(err).toMatchObject({ code: 'attestation_failed' });
    expect((err as Error).message).toMatch(/pid 7/);
    expect((err as Error).message).toMatch(/unix, k8s/);
    expect(log.lines.filter((l) => l.level === 'warn').map((l) => l.obj.attestor)).toEqual(['unix', 'k8s']);
  });

  it('fails as refused, with the attestor\'s reason and FailedPrecondition, when every attestor fails and one refused the workload', async () => {
    const refusing: WorkloadAttestor = {
      name: 'unix',
      attest: async () => {
        throw new WorkloadRefusedError('workload_too_large', 'unix: workload binary of pid 8 is 9000 bytes, over workload_size_limit 4096');
      },
    };
    const err = await new WorkloadAttestation([failing('k8s', 'kubelet unreachable'), refusing], recordingLogger())
      .attest(8, signal)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AttestationError);
    expect(err).toMatchObject({ code: 'workload_refused' });
    expect((err as Error).message).toContain('over workload_size_limit 4096');
    expect(toServiceError(err)).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: expect.stringContaining('workload_size_limit 4096') });
  });

  it('still serves the other attestors\' selectors when one refused the workload', async () => {
    const refusing: WorkloadAttestor = { name: 'unix', attest: () => Promise.reject(new WorkloadRefusedError('workload_too_large', 'too large')) };
    const r = await new WorkloadAttestation([refusing, fixed('k8s', ['ns:a'])], recordingLogger()).attest(9, signal);
    expect(r).toEqual({ selectors: [{ type: 'k8s', value: 'ns:a' }], failed: ['unix'] });
  });

  it('fails with the missing privilege, as FailedPrecondition, when every attestor fails and one was denied by /proc', async () => {
    const hint = 'proc: cannot read /proc/6/exe: EACCES: the agent (uid 4100) needs CAP_SYS_PTRACE (the systemd unit grants it) or root';
    const denied: WorkloadAttestor = { name: 'unix', attest: () => Promise.reject(new ProcError('proc_denied', hint)) };
    const err = await new WorkloadAttestation([failing('k8s', 'kubelet unreachable'), denied], recordingLogger()).attest(6, signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProcError);
    expect(err).toMatchObject({ code: 'proc_denied', message: `workload attestation failed for pid 6: attestor unix: ${hint}` });
    expect(toServiceError(err).code).toBe(grpc.status.FAILED_PRECONDITION);
    // The other attestors' selectors are still served when one of them was denied, as spire-agent does.
    const r = await new WorkloadAttestation([denied, fixed('k8s', ['ns:a'])], recordingLogger()).attest(6, signal);
    expect(r).toEqual({ selectors: [{ type: 'k8s', value: 'ns:a' }], failed: ['unix'] });
  });

  it('reports a pid that no attestor could find as workload_gone, which is NotFound', async () => {
    const gone = (name: string): WorkloadAttestor => ({ name, attest: () => Promise.reject(new ProcError('process_gone', 'proc: process 5 no longer exists')) });
    const err = await new WorkloadAttestation([gone('unix'), gone('k8s')], recordingLogger()).attest(5, signal).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'workload_gone', message: expect.stringContaining('process 5 does not exist') });
    expect(toServiceError(err).code).toBe(grpc.status.NOT_FOUND);
    const mixed = await new WorkloadAttestation([gone('unix'), failing('k8s', 'kubelet unreachable')], recordingLogger()).attest(5, signal).catch((e: unknown) => e);
    expect(mixed).toMatchObject({ code: 'attestation_failed' });
  });

  it('maps a plain all-failed attestation to Unavailable, which clients retry', async () => {
    const err = await new WorkloadAttestation([failing('unix', 'x')], recordingLogger()).attest(7, signal).catch((e: unknown) => e);
    expect(toServiceError(err).code).toBe(grpc.status.UNAVAILABLE);
  });

  it('handles an attestor that rejects with something other than an Error', async () => {
    const odd: WorkloadAttestor = { name: 'odd', attest: () => Promise.reject('plain string') };
    const log = recordingLogger();
    const r = await new WorkloadAttestation([odd, fixed('unix', ['uid:1'])], log).attest(1, signal);
    expect(r.failed).toEqual(['odd']);
    expect(log.lines[0]!.obj.error).toBe('plain string');
  });

  it('closes every attestor that has a close()', async () => {
    const closed: string[] = [];
    const closable = (name: string): WorkloadAttestor => ({ name, attest: async () => [], close: async () => void closed.push(name) });
    await new WorkloadAttestation([closable('a'), fixed('b', []), closable('c')], recordingLogger()).close();
    expect(closed.sort()).toEqual(['a', 'c']);
  });
});

describe('Semaphore', () => {
  async function measure(limit: number, tasks: number, hold: () => Promise<void>): Promise<{ max: number; done: number }> {
    const s = new Semaphore(limit);
    let inFlight = 0;
    let max = 0;
    let done = 0;
    await Promise.all(
      Array.from({ length: tasks }, () =>
        s.run(async () => {
          inFlight++;
          max = Math.max(max, inFlight);
          await hold();
          inFlight--;
          done++;
        }),
      ),
    );
    return { max, done };
  }

  it.each([1, 3, 8])('lets at most %i tasks run at once, and runs them all', async (limit) => {
    expect(await measure(limit, 30, () => new Promise((r) => setTimeout(r, 2)))).toEqual({ max: limit, done: 30 });
  });

  it('releases its slot when a task throws', async () => {
    const s = new Semaphore(1);
    await expect(s.run(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(s.run(async () => 'next')).resolves.toBe('next');
  });

  it('bounds concurrent attestations of WorkloadAttestation', async () => {
    let inFlight = 0;
    let max = 0;
    const slow: WorkloadAttestor = {
      name: 'slow',
      attest: async () => {
        inFlight++;
        max = Math.max(max, inFlight);
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
        return ['x'];
      },
    };
    const wa = new WorkloadAttestation([slow], recordingLogger(), { concurrency: 2 });
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => wa.attest(i, signal)));
    expect(results).toHaveLength(10);
    expect(max).toBe(2);
  });

  // A released slot goes straight to the woken waiter, so nobody can slip in between.
  it('never lets a newcomer barge past a woken waiter, whatever the microtask timing', async () => {
    const maxima: number[] = [];
    for (let depth = 0; depth < 8; depth++) {
      const s = new Semaphore(1);
      let inFlight = 0;
      let max = 0;
      const counted = async (hold: Promise<void>): Promise<void> => {
        inFlight++;
        max = Math.max(max, inFlight);
        await hold;
        inFlight--;
      };
      let open!: () => void;
      const gate = new Promise<void>((r) => (open = r));
      const first = s.run(() => counted(gate));
      const waiter = s.run(() => counted(tick()));
      await tick();
      open();
      // A newcomer arriving `depth` microtasks after the holder let go.
      let q: Promise<void> = Promise.resolve();
      for (let i = 0; i < depth; i++) q = q.then(() => undefined);
      const late = q.then(() => s.run(() => counted(tick())));
      await Promise.all([first, waiter, late]);
      maxima.push(max);
    }
    expect(maxima).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
  });
});

describe('WorkloadAttestation: sharing', () => {
  it('runs one attestation for concurrent requests about the same pid, and a fresh one afterwards', async () => {
    let calls = 0;
    const slow: WorkloadAttestor = {
      name: 'unix',
      attest: async () => {
        calls++;
        await new Promise((r) => setTimeout(r, 20));
        return [`uid:${calls}`];
      },
    };
    const wa = new WorkloadAttestation([slow], nullLogger);
    const signal = new AbortController().signal;
    const results = await Promise.all(Array.from({ length: 50 }, () => wa.attest(42, signal)));
    expect(calls).toBe(1);
    expect(new Set(results.map((r) => r.selectors[0]!.value))).toEqual(new Set(['uid:1']));
    await wa.attest(43, signal);
    expect((await wa.attest(42, signal)).selectors[0]!.value).toBe('uid:3');
  });
});

describe('WorkloadAttestation: needsSignal', () => {
  it('is false only when every attestor says it ignores the signal (unix does; k8s, docker and systemd read it)', async () => {
    const { UnixAttestor } = await import('../../../src/attestation/workload/unix/index.js');
    const { ProcReader } = await import('../../../src/proc/proc-reader.js');
    const unix = new UnixAttestor({ discoverWorkloadPath: false, workloadSizeLimit: 0 } as never, new ProcReader());
    expect(new WorkloadAttestation([unix], nullLogger).needsSignal).toBe(false);
    expect(new WorkloadAttestation([unix, fixed('docker', [])], nullLogger).needsSignal).toBe(true);
    expect(new WorkloadAttestation([], nullLogger).needsSignal).toBe(false);
  });
});
