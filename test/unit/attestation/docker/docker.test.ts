/**
 * The docker attestor against a FAKE Docker Engine (test/helpers/fake-docker.ts), on REAL processes
 * of this machine whose cgroup file is replaced through a fixture /proc root. The fake is kept for
 * what a real engine cannot be made to produce: injected failures, null Labels/Env, systemd-driver
 * and cgroup v2 paths, Podman sockets, other API versions. The same attestor against a real dockerd,
 * compared with spire-agent v1.13.3, is test/interop/docker/docker-workload.test.ts.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createDockerAttestor, DockerAttestorError } from '../../../../src/attestation/workload/docker/index.js';
import type { WorkloadAttestor } from '../../../../src/attestation/workload/types.js';
import { ProcReader } from '../../../../src/proc/proc-reader.js';
import { nullLogger } from '../../../../src/telemetry/logger.js';
import { FakeDockerEngine } from '../../../helpers/fake-docker.js';
import { sleeper, waitExit } from '../../../helpers/processes.js';
import { RecordingClock, dockerPlugin, procRootFor } from './helpers.js';

const ID = '53250ec8a8a56557b05875d05d1322ca5b07b18102b5799b096397c584182963';
const OTHER = 'ac3365b8a04406f70ecb18c521b7400d839be2fdf8d27a4518f1acadadf2ba1f';
// The examples of spire-agent's doc/plugin_agent_workloadattestor_docker.md.
const ENVOY = 'envoyproxy/envoy:contrib-v1.29.1';
const DIGEST = 'sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';

let child: ChildProcess;
let pid: number;
let docker: FakeDockerEngine;
let clock: RecordingClock;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  child = sleeper();
  pid = child.pid!;
});

afterAll(async () => {
  child.kill('SIGKILL');
  await waitExit(child);
});

beforeEach(async () => {
  docker = await FakeDockerEngine.start();
  clock = new RecordingClock();
  docker
    .addContainer({
      id: ID,
      image: ENVOY,
      labels: { 'com.example.name': 'foo', 'com.example.cluster': 'prod' },
      env: ['ENVIRONMENT=prod', 'PATH=/usr/local/bin:/usr/bin', 'EMPTY='],
    })
    .addImage({ ref: ENVOY, id: DIGEST });
});

afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  await docker.close();
});

function attestor(cgroupText: string, data: Record<string, unknown> = {}): WorkloadAttestor {
  const { proc, cleanup } = procRootFor(pid, cgroupText);
  const a = createDockerAttestor(dockerPlugin({ docker_socket_path: docker.address, ...data }), { proc, log: nullLogger, clock });
  cleanups.push(cleanup, () => a.close?.());
  return a;
}

const attest = (a: WorkloadAttestor, signal = new AbortController().signal): Promise<string[]> => a.attest(pid, signal);

async function failure(p: Promise<unknown>): Promise<DockerAttestorError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Error);
  return err as DockerAttestorError;
}

describe('docker attestor: selectors', () => {
  it('gives label, env, image_id and image_config_digest exactly as spire-agent documents them', async () => {
    const a = attestor(`0::/system.slice/docker-${ID}.scope\n`);
    expect(a.name).toBe('docker');
    expect(await attest(a)).toEqual([
      'label:com.example.name:foo',
      'label:com.example.cluster:prod',
      'env:ENVIRONMENT=prod',
      'env:PATH=/usr/local/bin:/usr/bin',
      'env:EMPTY=',
      `image_id:${ENVOY}`,
      `image_config_digest:${DIGEST}`,
    ]);
    // Without docker_version the version comes from the engine's /_ping, as spire-agent's client negotiates it.
    expect(docker.requests.map((r) => r.path)).toEqual(['/_ping', `/v1.43/containers/${ID}/json`, `/v1.43/images/${ENVOY}/json`]);
  });

  it('prefixes the Engine API version when docker_version is set', async () => {
    const a = attestor(`4:memory:/docker/${ID}\n`, { docker_version: '1.43' });
    docker.apiVersion = '1.45';
    await attest(a);
    // No ping: the configured version is used as is, as spire-agent's client.WithVersion does.
    expect(docker.requests.map((r) => r.path)).toEqual([`/v1.43/containers/${ID}/json`, `/v1.43/images/${ENVOY}/json`]);
  });

  it('negotiates once per socket: the engine version when older than 1.51, 1.51 when newer, 1.24 when it names none', async () => {
    const cases: [string | undefined, string][] = [['1.41', '1.41'], ['1.60', '1.51'], ['2.0', '1.51'], [undefined, '1.24'], ['garbage', '1.24']];
    for (const [engine, want] of cases) {
      docker.requests.length = 0;
      docker.apiVersion = engine;
      const a = attestor(`0::/docker/${ID}\n`);
      await attest(a);
      await attest(a);
      expect(docker.requests.map((r) => r.path), String(engine)).toEqual(['/_ping', ...Array(2).fill([`/v${want}/containers/${ID}/json`, `/v${want}/images/${ENVOY}/json`]).flat()]);
    }
  });

  it('retries a failed ping with the inspect and does not keep the failure', async () => {
    docker.failPing(2);
    expect(await attest(attestor(`0::/docker/${ID}\n`))).toContain('label:com.example.name:foo');
    expect(docker.requests.map((r) => r.path)).toEqual(['/_ping', '/_ping', '/_ping', `/v1.43/containers/${ID}/json`, `/v1.43/images/${ENVOY}/json`]);
    expect(clock.delays).toEqual([100, 200]);
  });

  it('keeps going without image_config_digest when image inspect fails', async () => {
    docker.failImageInspect(1);
    const got = await attest(attestor(`0::/docker/${ID}\n`));
    expect(got).toContain(`image_id:${ENVOY}`);
    expect(got.some((s) => s.startsWith('image_config_digest:'))).toBe(false);
  });

  it('handles null Labels and Env and an empty Image (no image_id, no image inspect)', async () => {
    docker.addContainer({ id: OTHER, image: '', labels: null, env: null });
    expect(await attest(attestor(`0::/docker/${OTHER}\n`))).toEqual([]);
    expect(docker.requests.map((r) => r.path)).toEqual(['/_ping', `/v1.43/containers/${OTHER}/json`]);
  });

  it('is not applicable to a process outside containers: [] and no engine call (real /proc of this machine)', async () => {
    const a = createDockerAttestor(dockerPlugin({ docker_socket_path: docker.address }), { proc: new ProcReader(), log: nullLogger, clock });
    cleanups.push(() => a.close?.());
    expect(await a.attest(pid, new AbortController().signal)).toEqual([]);
    expect(docker.requests).toEqual([]);
  });

  it('is not applicable when the cgroups name no container', async () => {
    expect(await attest(attestor('0::/user.slice/user-1000.slice/session-4.scope\n'))).toEqual([]);
    expect(docker.requests).toEqual([]);
  });

  it('refuses cgroups naming two containers', async () => {
    const err = await failure(attest(attestor(`5:memory:/docker/${ID}\n4:pids:/docker/${OTHER}\n`)));
    expect(err).toMatchObject({ code: 'container_conflict' });
    expect(docker.requests).toEqual([]);
  });
});

describe('docker attestor: retries and failures', () => {
  it('retries container inspect with 100 ms exponential backoff on the Clock', async () => {
    docker.failContainerInspect(2);
    expect(await attest(attestor(`0::/docker/${ID}\n`))).toContain('label:com.example.name:foo');
    expect(docker.requests.filter((r) => r.path.includes('/containers/'))).toHaveLength(3);
    expect(clock.delays).toEqual([100, 200]);
  });

  it('gives up after one try and 3 retries (100, 200, 400 ms), as spire-agent does', async () => {
    docker.failContainerInspect(10, 500);
    const err = await failure(attest(attestor(`0::/docker/${ID}\n`)));
    expect(err).toMatchObject({ code: 'docker_api' });
    expect(err.message).toMatch(/^docker: container inspect at .* answered HTTP 500: fake engine: injected failure/);
    expect(docker.requests.filter((r) => r.path.includes('/containers/'))).toHaveLength(4);
    expect(clock.delays).toEqual([100, 200, 400]);
  });

  it('reports a container the engine does not know as container_not_found', async () => {
    const err = await failure(attest(attestor(`0::/docker/${OTHER}\n`)));
    expect(err).toMatchObject({ code: 'container_not_found' });
    expect(err.message).toContain(`docker: container ${OTHER} not found`);
    expect(err.message).toContain(`No such container: ${OTHER}`);
  });

  it('reports an engine that is not listening as docker_unavailable', async () => {
    const a = attestor(`0::/docker/${ID}\n`, { docker_socket_path: `unix://${docker.socketPath}.missing` });
    const err = await failure(attest(a));
    expect(err).toMatchObject({ code: 'docker_unavailable' });
    expect(err.message).toMatch(/^docker: cannot reach the container engine at unix:\/\/.*\.missing/);
  });

  it('stops waiting between retries when the caller aborts', async () => {
    docker.failContainerInspect(10);
    clock.hold = true;
    const ac = new AbortController();
    const p = attest(attestor(`0::/docker/${ID}\n`), ac.signal);
    while (clock.pendingTimers === 0) await new Promise((r) => setTimeout(r, 2));
    ac.abort();
    const err = await failure(p);
    expect(err).toMatchObject({ code: 'aborted' });
    expect(docker.requests.map((r) => r.path)).toEqual(['/_ping', `/v1.43/containers/${ID}/json`]);
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('docker attestor: custom cgroup matchers', () => {
  const cfg = { use_new_container_locator: false, container_id_cgroup_matchers: ['/docker/*/<id>', '/my.slice/<id>'] };

  it('replaces the locator: ids need not be 64 hex', async () => {
    docker.addContainer({ id: 'web-1', image: ENVOY, labels: { app: 'web' } });
    expect(await attest(attestor('3:cpu:/my.slice/web-1\n', cfg))).toEqual(['label:app:web', `image_id:${ENVOY}`, `image_config_digest:${DIGEST}`]);
    expect(docker.requests[1]?.path).toBe('/v1.43/containers/web-1/json');
  });

  it('does not fall back to the locator when no pattern matches', async () => {
    expect(await attest(attestor(`0::/docker/${ID}\n`, cfg))).toEqual([]);
    expect(docker.requests).toEqual([]);
  });

  it('refuses a pattern that matched an empty id', async () => {
    const err = await failure(attest(attestor('3:cpu:/my.slice/\n', cfg)));
    expect(err).toMatchObject({ code: 'container_id_empty' });
  });

  it('refuses two ids from two lines', async () => {
    const err = await failure(attest(attestor('3:cpu:/my.slice/a\n2:memory:/docker/x/b\n', cfg)));
    expect(err).toMatchObject({ code: 'container_conflict' });
    expect(err.message).toBe('docker: multiple container IDs found in cgroups (a, b)');
  });
});

describe('docker attestor: Podman', () => {
  let podman: FakeDockerEngine;

  beforeEach(async () => {
    podman = await FakeDockerEngine.start('podman.sock');
    podman.addContainer({ id: OTHER, image: 'docker.io/library/nginx:1.25', labels: { io: 'podman' } }).addImage({ ref: 'docker.io/library/nginx:1.25', id: DIGEST });
  });

  afterEach(async () => {
    await podman.close();
  });

  it('asks the rootful Podman socket for a libpod container under machine.slice, unversioned', async () => {
    const a = attestor(`0::/machine.slice/libpod-${OTHER}.scope/container\n`, { podman_socket_path: podman.address, docker_version: '1.43' });
    expect(await attest(a)).toEqual(['label:io:podman', 'image_id:docker.io/library/nginx:1.25', `image_config_digest:${DIGEST}`]);
    expect(docker.requests).toEqual([]);
    expect(podman.requests.map((r) => r.path)).toEqual([`/containers/${OTHER}/json`, '/images/docker.io/library/nginx:1.25/json']);
  });

  it("formats podman_socket_path_template with the uid from the user slice (%% is a literal %)", async () => {
    const dir = podman.socketPath.replace(/podman\.sock$/, '');
    const a = attestor(`0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${OTHER}.scope\n`, {
      podman_socket_path: podman.address,
      podman_socket_path_template: `unix://${dir}%d%%.sock`,
    });
    // Nothing listens on <dir>/1000%.sock: the error names that exact socket, and neither
    // the rootful Podman nor the Docker socket was asked instead.
    const err = await failure(attest(a));
    expect(err).toMatchObject({ code: 'docker_unavailable' });
    expect(err.message).toContain(`unix://${dir}1000%.sock`);
    expect(podman.requests).toEqual([]);
    expect(docker.requests).toEqual([]);
  });

  it('uses the real rootless socket path when the template points at a listening engine', async () => {
    const rootless = await FakeDockerEngine.start('1000.sock');
    cleanups.push(() => rootless.close());
    rootless.addContainer({ id: OTHER, image: '', labels: { uid: '1000' } });
    const dir = rootless.socketPath.replace(/1000\.sock$/, '');
    const a = attestor(`0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod/${OTHER}\n`, {
      podman_socket_path: podman.address,
      podman_socket_path_template: `unix://${dir}%d.sock`,
    });
    expect(await attest(a)).toEqual(['label:uid:1000']);
    expect(rootless.requests.map((r) => r.path)).toEqual([`/containers/${OTHER}/json`]);
    expect(podman.requests).toEqual([]);
  });
});
