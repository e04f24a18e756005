/**
 * CallAttestor in memory: FAKE callers through the `callerOf` seam, a FAKE attestation. Who the
 * caller is comes only from the tracked connection; the answer is only given if the same process
 * is still there afterwards; denials are audited.
 */
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { AttestationError } from '../../../src/attestation/workload/attest.js';
import { CallAttestor } from '../../../src/endpoints/call-attestor.js';
import { statusOf } from '../../../src/endpoints/status.js';
import { AuditLog } from '../../../src/telemetry/audit.js';
import { FakeAttestation, FakeCall, FakeCaller, memoryLogger } from '../../helpers/request-path.js';

function setup() {
  const log = memoryLogger();
  const attestation = new FakeAttestation();
  const caller = new FakeCaller(77);
  const attestor = new CallAttestor({
    attestation,
    callerOf: (call) => (call.getPeer() === 'peer-77' ? caller : undefined),
    proc: { exePath: async (pid) => `/proc/${pid}/exe-target` },
    audit: new AuditLog(log, ['unix']),
  });
  const denials = () => log.lines.filter((l) => l.fields.audit && l.fields.decision === 'denied').map((l) => l.fields.reason);
  return { attestation, caller, attestor, denials };
}

async function statusOfAttest(p: Promise<unknown>): Promise<grpc.status | 'ok'> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return statusOf(err);
  }
}

describe('CallAttestor', () => {
  it('attests the tracked caller: selectors from the attestors, binary from /proc, the kernel identity kept', async () => {
    const t = setup();
    t.attestation.byPid.set(77, [{ type: 'unix', value: 'uid:1000' }]);
    const a = await t.attestor.attest(new FakeCall('peer-77'), 'FetchX509SVID');
    expect(a).toEqual({ caller: t.caller, selectors: [{ type: 'unix', value: 'uid:1000' }], binary: '/proc/77/exe-target' });
  });

  it.each([
    ['an untracked connection', (t: ReturnType<typeof setup>) => new FakeCall('peer-other'), grpc.status.UNAUTHENTICATED],
    [
      'a caller that exits while it is attested',
      (t: ReturnType<typeof setup>) => {
        t.attestation.byPid.set(77, [{ type: 'unix', value: 'uid:1000' }]);
        const attest = t.attestation.attest.bind(t.attestation);
        t.attestation.attest = async (pid: number) => {
          const r = await attest(pid);
          t.caller.gone();
          return r;
        };
        return new FakeCall('peer-77');
      },
      grpc.status.UNAUTHENTICATED,
    ],
    [
      'every attestor failing because the caller exited',
      (t: ReturnType<typeof setup>) => {
        t.attestation.byPid.set(77, new AttestationError('attestation_failed', 'every attestor failed'));
        t.caller.gone();
        return new FakeCall('peer-77');
      },
      grpc.status.UNAUTHENTICATED,
    ],
    [
      'every attestor failing for a live caller',
      (t: ReturnType<typeof setup>) => {
        t.attestation.byPid.set(77, new AttestationError('attestation_failed', 'every attestor failed'));
        return new FakeCall('peer-77');
      },
      grpc.status.UNAVAILABLE,
    ],
    [
      'an attestor refusing the workload',
      (t: ReturnType<typeof setup>) => {
        t.attestation.byPid.set(77, new AttestationError('workload_refused', 'too large'));
        return new FakeCall('peer-77');
      },
      grpc.status.FAILED_PRECONDITION,
    ],
  ])('%s gets its status and, when the caller is known, an audit record of the denial', async (name, make, status) => {
    const t = setup();
    expect(await statusOfAttest(t.attestor.attest(make(t), 'FetchJWTSVID'))).toBe(status);
    // An untracked connection has no pid/uid to put in a record; the listener logged it when it refused to identify it.
    expect(t.denials()).toHaveLength(name === 'an untracked connection' ? 0 : 1);
  });

  it('gives attestors an AbortSignal that fires when the client cancels', async () => {
    const t = setup();
    let seen: AbortSignal | undefined;
    t.attestation.attest = (_pid: number, signal?: AbortSignal) =>
      new Promise((_, reject) => {
        seen = signal;
        signal?.addEventListener('abort', () => reject(new AttestationError('attestation_failed', 'aborted')));
      });
    const call = new FakeCall('peer-77');
    const p = t.attestor.attest(call, 'FetchX509SVID');
    await new Promise((r) => setImmediate(r));
    expect(seen?.aborted).toBe(false);
    call.cancel();
    expect(await statusOfAttest(p)).toBe(grpc.status.UNAVAILABLE);
    expect(seen?.aborted).toBe(true);
  });

  it('makes no controller per call when no attestor reads the signal (unix only), and still audits denials', async () => {
    const log = memoryLogger();
    const attestation = Object.assign(new FakeAttestation(), { needsSignal: false });
    const caller = new FakeCaller(77);
    const attestor = new CallAttestor({ attestation, callerOf: () => caller, proc: { exePath: async () => '/bin/x' }, audit: new AuditLog(log, ['unix']) });
    const signals: AbortSignal[] = [];
    const attest = attestation.attest.bind(attestation);
    attestation.attest = (pid: number, signal?: AbortSignal) => (signals.push(signal!), attest(pid));
    attestation.byPid.set(77, [{ type: 'unix', value: 'uid:1000' }]);
    const call = new FakeCall('peer-77');
    await attestor.attest(call, 'FetchX509SVID');
    await attestor.attest(new FakeCall('peer-77'), 'FetchX509SVID');
    // One never-aborted signal for every call, and no 'cancelled' listener left on the call.
    expect(signals[0]).toBe(signals[1]);
    expect(signals[0]!.aborted).toBe(false);
    expect((call as unknown as NodeJS.EventEmitter).listenerCount('cancelled')).toBe(0);
    attestation.byPid.set(77, new AttestationError('attestation_failed', 'every attestor failed'));
    expect(await statusOfAttest(attestor.attest(new FakeCall('peer-77'), 'FetchJWTSVID'))).toBe(grpc.status.UNAVAILABLE);
    expect(log.lines.filter((l) => l.fields.audit && l.fields.decision === 'denied')).toHaveLength(1);
  });
});
