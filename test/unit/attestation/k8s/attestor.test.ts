/**
 * The k8s attestor end to end against a FAKE kubelet (test/helpers/fake-kubelet.ts) over real
 * HTTPS / HTTP on 127.0.0.1, with cgroup files from fixture /proc trees. Why the fake here: unit
 * tests run without root or a cluster. What the real kubelet v1.34.4 was compared on (token,
 * client certificate, read-only port, init container, restarted container, a burst of pods not
 * listed yet, completed pods) is in test/interop/kube/k8s-workload.test.ts. The cases below that
 * only a fake can give: exact poll counts (hidden for 3 polls, gives up after max_poll_attempts),
 * injected kubelet errors that recover, one container ID in two pods, a CA that did not sign the
 * kubelet's certificate, anonymous access refused, and the request count of 20 attestations
 * released at the same instant.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createK8sAttestor, type K8sAttestor } from '../../../../src/attestation/workload/k8s/index.js';
import { systemClock, type Clock } from '../../../../src/clock.js';
import { ProcReader } from '../../../../src/proc/proc-reader.js';
import { nullLogger } from '../../../../src/telemetry/logger.js';
import { FakeClock } from '../../../helpers/fake-clock.js';
import { FakeKubelet, createKubeletPKI, type KubeletPKI } from '../../../helpers/fake-kubelet.js';
import { API_CONTAINER_SELECTORS, FIXTURES, PID, POD1_SELECTORS, fixturePods, k8sPlugin, sorted } from './helpers.js';

const NODE = 'k8s-node-1';
const proc = new ProcReader(join(FIXTURES, 'pod-workload'));
const hostProc = new ProcReader(join(FIXTURES, 'host-process'));
const never = new AbortController().signal;

let pki: KubeletPKI;
let dir: string;
const files: Record<string, string> = {};
const open: { kubelet?: FakeKubelet; attestor?: K8sAttestor }[] = [];

beforeAll(async () => {
  pki = await createKubeletPKI(NODE);
  dir = mkdtempSync(join(tmpdir(), 'k8s-attestor-'));
  const put = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text, { mode: 0o600 });
    return p;
  };
  files['ca'] = put('kubelet-ca.crt', pki.servingCa.certPem);
  files['otherCa'] = put('other-ca.crt', pki.otherCa.certPem);
  files['token'] = put('token', 'sa-token-1\n');
  files['cert'] = put('client.crt', pki.client.certPem);
  files['key'] = put('client.key', pki.client.keyPem);
  files['wrongKey'] = put('wrong.key', pki.serving.keyPem);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

afterEach(async () => {
  for (const o of open.splice(0)) {
    await o.attestor?.close();
    await o.kubelet?.close();
  }
});

async function kubelet(opts: Parameters<typeof FakeKubelet.start>[0] = {}): Promise<FakeKubelet> {
  const k = await FakeKubelet.start({ pki, token: 'sa-token-1', ...opts });
  k.setPods(fixturePods());
  open.push({ kubelet: k });
  return k;
}

/** Resolves the node name to the fake kubelet's address, as cluster DNS would. */
const lookup = ((_host: string, _opts: unknown, cb: (err: Error | null, address: string | { address: string; family: number }[], family?: number) => void) => {
  const all = typeof _opts === 'object' && _opts !== null && (_opts as { all?: boolean }).all;
  if (all) cb(null, [{ address: '127.0.0.1', family: 4 }]);
  else cb(null, '127.0.0.1', 4);
}) as never;

function attestor(k: FakeKubelet, data: Record<string, unknown>, opts: { clock?: Clock; procReader?: ProcReader; env?: Record<string, string> } = {}): K8sAttestor {
  const base = k.mode === 'secure' ? { kubelet_secure_port: k.port, kubelet_ca_path: files['ca'], token_path: files['token'] } : { kubelet_read_only_port: k.port };
  const a = createK8sAttestor(k8sPlugin({ ...base, ...data }), {
    proc: opts.procReader ?? proc,
    log: nullLogger,
    clock: opts.clock ?? systemClock,
    env: opts.env ?? {},
    lookup,
  });
  open.push({ attestor: a });
  return a;
}

describe('k8s attestor against a fake kubelet', () => {
  it('produces pod and container selectors for a workload, with a bearer token and a verified kubelet certificate', async () => {
    const k = await kubelet();
    const got = await attestor(k, {}).attest(PID.api, never);
    expect(sorted(got)).toEqual(sorted([...POD1_SELECTORS, ...API_CONTAINER_SELECTORS]));
    expect(k.tokensSeen).toEqual(['Bearer sa-token-1']);
  });

  it('attests a sidecar and an init container of the same pod with their own container selectors', async () => {
    const k = await kubelet();
    const a = attestor(k, {});
    expect(await a.attest(PID.envoy, never)).toContain('container-name:envoy');
    expect(await a.attest(PID.init, never)).toContain('container-name:migrate');
  });

  it('fails with 401 when the token is wrong, and says what to check', async () => {
    const k = await kubelet({ token: 'another-token' });
    await expect(attestor(k, { max_poll_attempts: 1 }).attest(PID.api, never)).rejects.toMatchObject({
      code: 'kubelet_unavailable',
      message: expect.stringMatching(/unexpected status code on pods response: 401 Unauthorized.*check token_path/),
    });
    expect(k.unauthorized).toBe(1);
  });

  it('re-reads the token every reload_interval', async () => {
    const k = await kubelet();
    const clock = new FakeClock();
    const a = attestor(k, { reload_interval: '1m', max_poll_attempts: 1 }, { clock });
    await a.attest(PID.api, never);
    writeFileSync(files['token']!, 'sa-token-2\n');
    k.setToken('sa-token-2');
    try {
      clock.advance(30_000); // the pod list is stale, the token not yet reloaded: the old one is refused
      await expect(a.attest(PID.api, never)).rejects.toThrow(/401/);
      clock.advance(30_000);
      expect(await a.attest(PID.api, never)).toContain('container-name:api');
      expect(k.tokensSeen).toEqual(['Bearer sa-token-1', 'Bearer sa-token-1', 'Bearer sa-token-2']);
    } finally {
      writeFileSync(files['token']!, 'sa-token-1\n');
    }
  });

  it('authenticates with a client certificate', async () => {
    const k = await kubelet({ token: undefined });
    const got = await attestor(k, { token_path: undefined, certificate_path: files['cert'], private_key_path: files['key'] }).attest(PID.api, never);
    expect(got).toContain('container-name:api');
    expect(k.tokensSeen).toEqual([]);
    expect(k.unauthorized).toBe(0);
  });

  it('refuses a client key that does not match the certificate at start', async () => {
    const k = await kubelet();
    expect(() => attestor(k, { token_path: undefined, certificate_path: files['cert'], private_key_path: files['wrongKey'] })).toThrow(
      /^k8s: unable to load keypair .*does not match/,
    );
  });

  it('authenticates anonymously when asked to, and the kubelet refuses that unless it allows anonymous access', async () => {
    const closed = await kubelet({ token: 'sa-token-1' });
    await expect(attestor(closed, { use_anonymous_authentication: true, max_poll_attempts: 1 }).attest(PID.api, never)).rejects.toThrow(/401/);
    const anon = await kubelet({ anonymous: true });
    expect(await attestor(anon, { use_anonymous_authentication: true }).attest(PID.api, never)).toContain('container-name:api');
    expect(anon.tokensSeen).toEqual([]);
  });

  it('fails clearly when kubelet_ca_path holds a CA that did not sign the kubelet certificate', async () => {
    const k = await kubelet();
    const err = await attestor(k, { kubelet_ca_path: files['otherCa'], max_poll_attempts: 1 }).attest(PID.api, never).catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'kubelet_unavailable', message: expect.stringMatching(/certificate is not trusted .*kubelet_ca_path .*skip_kubelet_verification/) });
    expect(k.requests).toBe(0);
  });

  it('trusts any kubelet certificate with skip_kubelet_verification', async () => {
    const k = await kubelet();
    expect(await attestor(k, { kubelet_ca_path: files['otherCa'], skip_kubelet_verification: true }).attest(PID.api, never)).toContain('container-name:api');
  });

  it('fails at start when the CA file is missing or not PEM', async () => {
    const k = await kubelet();
    expect(() => attestor(k, { kubelet_ca_path: join(dir, 'missing.crt') })).toThrow(/^k8s: unable to load kubelet CA from/);
    expect(() => attestor(k, { kubelet_ca_path: files['token'] })).toThrow(/^k8s: unable to parse kubelet CA/);
  });

  it('dials the node name and checks the certificate names it', async () => {
    const k = await kubelet();
    const a = attestor(k, {}, { env: { MY_NODE_NAME: NODE } });
    expect(await a.attest(PID.api, never)).toContain('container-name:api');
    const b = attestor(k, { node_name: 'k8s-node-2', max_poll_attempts: 1 });
    await expect(b.attest(PID.api, never)).rejects.toThrow(/does not name "k8s-node-2".*node_name/);
  });

  it('reads the read-only port over plain HTTP without credentials', async () => {
    const k = await kubelet({ mode: 'read-only' });
    expect(await attestor(k, {}).attest(PID.api, never)).toContain('container-name:api');
    expect(k.tokensSeen).toEqual([]);
  });

  it('returns no selectors for a process that is not in a container, without asking the kubelet', async () => {
    const k = await kubelet();
    expect(await attestor(k, {}, { procReader: hostProc }).attest(1000, never)).toEqual([]);
    expect(k.requests).toBe(0);
  });

  it('polls until a pod appears: found on the 4th request when hidden for 3', async () => {
    const k = await kubelet();
    k.setPods(fixturePods(), { hiddenForPolls: 3 });
    const t0 = Date.now();
    expect(await attestor(k, { poll_retry_interval: '20ms' }).attest(PID.api, never)).toContain('container-name:api');
    expect(k.requests).toBe(4);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(55); // three waits of ~20 ms between four requests
  });

  it('gives up after max_poll_attempts with a DeadlineExceeded-style error', async () => {
    const k = await kubelet();
    k.setPods(fixturePods(), { hiddenForPolls: 100 });
    await expect(attestor(k, { poll_retry_interval: '10ms', max_poll_attempts: 3 }).attest(PID.api, never)).rejects.toMatchObject({
      code: 'pod_not_found',
      message: expect.stringMatching(/^k8s: no selectors found after max poll attempts: container 4f1c.* in 3 attempts/),
    });
    expect(k.requests).toBe(3);
  });

  it('retries after kubelet errors and succeeds when it recovers', async () => {
    const k = await kubelet();
    k.failRequests(2);
    expect(await attestor(k, { poll_retry_interval: '10ms' }).attest(PID.api, never)).toContain('container-name:api');
    expect(k.requests).toBe(3);
  });

  it('makes ONE kubelet request for 20 concurrent attestations', async () => {
    const k = await kubelet();
    const a = attestor(k, {});
    const pids = Array.from({ length: 20 }, (_, i) => [PID.api, PID.envoy, PID.init, PID.other][i % 4]!);
    const results = await Promise.all(pids.map((pid) => a.attest(pid, new AbortController().signal)));
    expect(results.every((r) => r.length > 0)).toBe(true);
    expect(k.requests).toBe(1);
    expect(a.kubeletRequests).toBe(1);
  });

  it('reuses a pod list for poll_retry_interval, then fetches a fresh one', async () => {
    const k = await kubelet();
    const clock = new FakeClock();
    const a = attestor(k, { poll_retry_interval: '500ms' }, { clock });
    await a.attest(PID.api, never);
    clock.advance(499);
    await a.attest(PID.other, never);
    expect(k.requests).toBe(1);
    clock.advance(1);
    await a.attest(PID.api, never);
    expect(k.requests).toBe(2);
  });

  it('with disable_container_selectors gives pod selectors for a known pod whose container is not listed yet', async () => {
    const k = await kubelet();
    const got = await attestor(k, { disable_container_selectors: true }).attest(PID.starting, never);
    expect(got).toContain('pod-name:starting-0');
    expect(got.some((v) => v.startsWith('container-'))).toBe(false);
    const api = await attestor(k, { disable_container_selectors: true }).attest(PID.api, never);
    expect(sorted(api)).toEqual(sorted(POD1_SELECTORS));
  });

  it('without disable_container_selectors keeps polling for a container that is not listed yet', async () => {
    const k = await kubelet();
    await expect(attestor(k, { poll_retry_interval: '5ms', max_poll_attempts: 2 }).attest(PID.starting, never)).rejects.toMatchObject({ code: 'pod_not_found' });
  });

  it('fails when one container id is listed in two pods', async () => {
    const k = await kubelet();
    const pods = fixturePods();
    pods[2]!['status'].containerStatuses[0].containerID = `cri-o://${'c0ffee00'.repeat(8)}`;
    k.setPods(pods);
    await expect(attestor(k, {}).attest(PID.crioNoPod, never)).rejects.toMatchObject({ code: 'duplicate_container' });
  });

  it('stops waiting when the caller goes away, and close() cancels the poll timer', async () => {
    const k = await kubelet();
    k.setPods(fixturePods(), { hiddenForPolls: 100 });
    const clock = new FakeClock();
    const a = attestor(k, {}, { clock });
    const ac = new AbortController();
    const pending = a.attest(PID.api, ac.signal);
    await expect.poll(() => clock.pendingTimers).toBe(1);
    ac.abort(new Error('caller gone'));
    await expect(pending).rejects.toThrow('caller gone');
    expect(clock.pendingTimers).toBe(0);
    const again = a.attest(PID.api, never);
    await expect.poll(() => clock.pendingTimers).toBe(1);
    await a.close();
    await expect(again).rejects.toMatchObject({ code: 'pod_cache_closed' });
    expect(clock.pendingTimers).toBe(0);
  });

  it('fails every attestation with disable_kubelet_client, as spire-agent does', async () => {
    const a = createK8sAttestor(k8sPlugin({ disable_kubelet_client: true }), { proc, log: nullLogger, clock: systemClock, env: {} });
    await expect(a.attest(PID.api, never)).rejects.toMatchObject({ code: 'kubelet_disabled' });
  });
});
