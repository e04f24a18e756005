/**
 * p50/p99 of attest() over 1,000 sequential calls against the FAKE kubelet
 * (test/helpers/fake-kubelet.ts: a unit-test budget, no cluster) with a warm pod list. Bounds are loose (a shared CI
 * machine is noisy) but catch a regression to one kubelet request per call.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createK8sAttestor, type K8sAttestor } from '../../../../src/attestation/workload/k8s/index.js';
import { systemClock } from '../../../../src/clock.js';
import { ProcReader } from '../../../../src/proc/proc-reader.js';
import { nullLogger } from '../../../../src/telemetry/logger.js';
import { FakeKubelet } from '../../../helpers/fake-kubelet.js';
import { FIXTURES, PID, fixturePods, k8sPlugin } from './helpers.js';

let kubelet: FakeKubelet;
const attestors: K8sAttestor[] = [];

beforeAll(async () => {
  kubelet = await FakeKubelet.start({ mode: 'read-only' });
  // A node-sized list: the fixture pods plus 100 filler pods.
  const filler = Array.from({ length: 100 }, (_, i) => {
    const p = fixturePods()[1]!;
    p['metadata'].uid = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
    p['status'].containerStatuses[0].containerID = `containerd://${i.toString(16).padStart(64, 'e')}`;
    return p;
  });
  kubelet.setPods([...fixturePods(), ...filler]);
});

afterAll(async () => {
  for (const a of attestors) await a.close();
  await kubelet.close();
});

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function measure(pollRetryInterval: string): Promise<{ p50: number; p99: number; requests: number }> {
  const a = createK8sAttestor(k8sPlugin({ kubelet_read_only_port: kubelet.port, poll_retry_interval: pollRetryInterval }), {
    proc: new ProcReader(join(FIXTURES, 'pod-workload')),
    log: nullLogger,
    clock: systemClock,
    env: {},
  });
  attestors.push(a);
  const signal = new AbortController().signal;
  await a.attest(PID.api, signal); // warm
  const before = kubelet.requests;
  const times: number[] = [];
  for (let i = 0; i < 1000; i++) {
    const t = performance.now();
    await a.attest(PID.api, signal);
    times.push(performance.now() - t);
  }
  times.sort((x, y) => x - y);
  return { p50: percentile(times, 50), p99: percentile(times, 99), requests: kubelet.requests - before };
}

// Timing is reported, not asserted: performance is judged by bench/, not by timed tests.
it('serves 1,000 attestations from a warm pod list without asking the kubelet again', async () => {
  // poll_retry_interval = 1h keeps the list fresh for the whole run, so this is the cache-hit path
  // (cgroup read + lookup + selector formatting) only.
  const cached = await measure('1h');
  console.log(
    `k8s attest() over 1000 calls, 103-pod list, warm cache: p50=${cached.p50.toFixed(3)}ms p99=${cached.p99.toFixed(3)}ms (${cached.requests} kubelet requests)`,
  );
  expect(cached.requests).toBe(0);
});
