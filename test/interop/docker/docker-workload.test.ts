/**
 * The docker workload attestor against a real Docker engine (dockerd 20.10 from Debian's docker.io,
 * started privately by scripts/docker.sh), spire-agent v1.13.3 and spiffe-agent side by side on the
 * host as root, both asking the same dockerd, attested by the real spire-server v1.13.3 with join
 * tokens. The workloads are real container processes: go-spiffe's client (test/interop/go-client,
 * static) started with `docker exec` in busybox containers that bind-mount one directory holding the
 * client and both agents' socket directories.
 *
 * What is compared: the docker selectors each agent derives for the same process (spire-agent's
 * debug log "PID attested to have selectors", spiffe-agent's audit record), string for string, and
 * the SPIFFE IDs each serves. spiffe-agent also produces `docker:image_config_digest`, which v1.13.3
 * does not: it is checked against the real engine's image Id and left out of the comparison.
 */
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineClient, MAX_API_VERSION } from '../../../src/attestation/workload/docker/engine-client.js';
import { planDocker, startDocker, type DockerEngine } from '../../helpers/docker/engine.js';
import { GO_CLIENT_BUILT, JSON_LOGS, agentConfFor, jsonLogs, startAgent, startSpireServer, waitFor, type AgentHandle, type AgentKind, type SpireBinaries, type SpireServer } from '../../helpers/spire/index.js';
import { Cleanup, KINDS, TD, plan } from '../server/fixture.js';

const docker = planDocker();
const skip = plan.skip || docker.skip;
const DIGEST = 'sha256:';

let bins: SpireBinaries;
let engine: DockerEngine;
let server: SpireServer;
let base: string;
let imageDigest: string;
const cleanup = new Cleanup();
/** Keyed by agent directory: the kind for the default config, `matchers-<kind>` for the other one. */
const agents = new Map<string, AgentHandle>();
const MATCHERS = (kind: AgentKind) => `matchers-${kind}`;

const socketIn = (key: string) => `/w/${key}/public/api.sock`;
const sid = (key: string, name: string) => `spiffe://${TD}/docker/${key}/${name}`;

type FetchOut = { ok?: boolean; code?: string; error?: string; x509Svids?: { spiffeId: string }[] };

async function execFetch(container: string, key: string): Promise<FetchOut> {
  const out = await engine.exec(container, ['/bin/env', `SPIFFE_ENDPOINT_SOCKET=unix://${socketIn(key)}`, '/w/bin/go-client', 'fetch', '-timeout', '20s']);
  return JSON.parse(out) as FetchOut;
}

/** The IDs served once the agent has synced the entries (a PermissionDenied before that is expected). */
async function servedIds(container: string, key: string, expected: number): Promise<string[]> {
  const r = await waitFor(`${key} serves ${expected} SVIDs to ${container}`, async () => {
    const x = await execFetch(container, key);
    return (x.x509Svids?.length ?? 0) >= expected ? x : undefined;
  }, { timeoutMs: 60_000, intervalMs: 1000, describe: () => agents.get(key)!.logTail() });
  return r.x509Svids!.map((s) => s.spiffeId).sort();
}

/** The docker selectors the agent last logged for a caller with this label, sorted. */
function loggedSelectors(agent: AgentHandle, label: string): string[] | undefined {
  let last: string[] | undefined;
  for (const r of jsonLogs(agent)) {
    const msg = String(r['msg']);
    if (msg !== 'PID attested to have selectors' && msg !== 'Workload API decision') continue;
    const raw = (r['selectors'] ?? []) as (string | { type: string; value: string })[];
    const sel = raw.map((s) => (typeof s === 'string' ? s : `${s.type}:${s.value}`)).filter((s) => s.startsWith('docker:'));
    if (sel.includes(label)) last = sel.sort();
  }
  return last;
}

async function compareSelectors(label: string, key: (kind: AgentKind) => string = (k) => k): Promise<{ ref: string[]; ours: string[] }> {
  const seen: Partial<Record<AgentKind, string[]>> = {};
  for (const kind of KINDS) {
    const a = agents.get(key(kind))!;
    seen[kind] = await waitFor(`${kind}: selectors with ${label}`, async () => loggedSelectors(a, label), { timeoutMs: 30_000, describe: () => a.logTail() });
  }
  const ref = seen['spire-agent'] ?? [];
  const ours = seen['spiffe-agent'] ?? [];
  console.info(`docker ${label}: spire-agent ${ref.join(' ')} | spiffe-agent ${ours.join(' ')}`);
  if (seen['spire-agent'] && seen['spiffe-agent']) {
    expect(ours.filter((s) => !s.startsWith('docker:image_config_digest:')), label).toEqual(ref);
    expect(ours).toContain(`docker:image_config_digest:${imageDigest}`);
    expect(ref.some((s) => s.startsWith('docker:image_config_digest:'))).toBe(false);
  }
  return { ref, ours };
}

async function runContainer(name: string, labels: Record<string, string>, env: Record<string, string>): Promise<string> {
  const args = ['run', '-d', '--name', name, '--network', 'none', '-v', `${base}:/w`];
  for (const [k, v] of Object.entries(labels)) args.push('--label', `${k}=${v}`);
  for (const [k, v] of Object.entries(env)) args.push('-e', `${k}=${v}`);
  return (await engine.docker([...args, engine.env.DOCKER_BUSYBOX_IMAGE, '/bin/sleep', '3600'])).trim();
}

beforeAll(async () => {
  if (skip) return;
  bins = plan.require();
  docker.require();
  base = await mkdtemp('/tmp/spire-it-docker-');
  cleanup.defer(() => rm(base, { recursive: true, force: true }));
  const t0 = Date.now();
  engine = await startDocker();
  cleanup.defer(() => engine.down());
  console.info(`docker: private engine up in ${Date.now() - t0} ms (${engine.env.DOCKERD_STATE_DIR})`);
  await chmod(base, 0o755);
  await mkdir(join(base, 'bin'), { mode: 0o755 });
  await copyFile(GO_CLIENT_BUILT, join(base, 'bin/go-client'));
  await chmod(join(base, 'bin/go-client'), 0o755);
  imageDigest = (await engine.docker(['image', 'inspect', '-f', '{{.Id}}', engine.env.DOCKER_BUSYBOX_IMAGE])).trim();
  expect(imageDigest.startsWith(DIGEST)).toBe(true);
  server = cleanup.add(await startSpireServer({ bins }));
  const attestor = (extra: string[]) =>
    `    WorkloadAttestor "docker" {\n        plugin_data {\n${[`docker_socket_path = "${engine.env.DOCKER_HOST}"`, ...extra].map((l) => `            ${l}`).join('\n')}\n        }\n    }`;
  // The second config: spire-agent's older cgroup matchers instead of the container locator, and a fixed API version.
  const matcherConf = ['use_new_container_locator = false', 'container_id_cgroup_matchers = ["/docker/<id>"]', 'docker_version = "1.41"'];
  const setups = KINDS.flatMap((kind) => [{ kind, key: kind as string, extra: [] as string[] }, { kind, key: MATCHERS(kind), extra: matcherConf }]);
  await Promise.all(
    setups.map(async ({ kind, key, extra }) => {
      const dir = join(base, key);
      await mkdir(dir, { mode: 0o755 });
      const token = await server.generateToken();
      const agentExtra = kind === 'spiffe-agent' ? `${JSON_LOGS}\n    log_selectors = ["unix:uid", "docker"]` : JSON_LOGS;
      const conf = await agentConfFor(server, { dir, joinToken: token, agentExtra, pluginsExtra: attestor(extra) });
      agents.set(key, cleanup.add(await startAgent(kind, bins, conf)));
      const parent = server.agentIdForToken(token);
      const sel = (...v: string[]) => v.map((value) => ({ type: 'docker', value }));
      await server.createEntries([
        { spiffe_id: sid(key, 'web'), parent_id: parent, selectors: sel('label:app:web') },
        { spiffe_id: sid(key, 'web-prod'), parent_id: parent, selectors: sel('label:app:web', 'env:STAGE=prod') },
        { spiffe_id: sid(key, 'image'), parent_id: parent, selectors: sel('label:app:web', `image_id:${engine.env.DOCKER_BUSYBOX_IMAGE}`) },
        // Matches only under spiffe-agent: v1.13.3 produces no image_config_digest selector.
        { spiffe_id: sid(key, 'digest'), parent_id: parent, selectors: sel('label:tier:digest', `image_config_digest:${imageDigest}`) },
      ]);
    }),
  );
}, 300_000);
afterAll(() => cleanup.run(), 180_000);

describe.skipIf(skip)('docker workload attestor against a real dockerd: spire-agent v1.13.3 and spiffe-agent', () => {
  it('a container with labels and env gets exactly the identities its selectors grant, with the same selectors from both agents', async () => {
    const t0 = Date.now();
    const c = await runContainer('prod', { app: 'web', 'com.example/team': 'a b=c' }, { STAGE: 'prod', EMPTY: '' });
    const want: Record<AgentKind, string[]> = {
      'spire-agent': [sid('spire-agent', 'image'), sid('spire-agent', 'web'), sid('spire-agent', 'web-prod')],
      'spiffe-agent': [sid('spiffe-agent', 'image'), sid('spiffe-agent', 'web'), sid('spiffe-agent', 'web-prod')],
    };
    for (const kind of KINDS) expect(await servedIds(c, kind, 3)).toEqual(want[kind]);
    const { ours } = await compareSelectors('docker:label:app:web');
    expect(ours).toEqual(expect.arrayContaining(['docker:label:com.example/team:a b=c', 'docker:env:STAGE=prod', 'docker:env:EMPTY=', `docker:image_id:${engine.env.DOCKER_BUSYBOX_IMAGE}`]));
    console.info(`docker prod container: served by ${KINDS.join(' and ')} in ${Date.now() - t0} ms`);
  }, 180_000);

  it('a container whose env does not match gets only the label entries', async () => {
    const c = await runContainer('dev', { app: 'web' }, { STAGE: 'dev' });
    for (const kind of KINDS) expect(await servedIds(c, kind, 2)).toEqual([sid(kind, 'image'), sid(kind, 'web')]);
    await compareSelectors('docker:env:STAGE=dev');
  }, 180_000);

  it('a container with non-matching labels gets no identity from either agent', async () => {
    const c = await runContainer('other', { app: 'other' }, {});
    for (const kind of KINDS) {
      const r = await execFetch(c, kind);
      expect(r.x509Svids ?? [], kind).toEqual([]);
      expect(r.code, `${kind}: ${r.error}`).toBe('PermissionDenied');
    }
    await compareSelectors('docker:label:app:other');
  }, 180_000);

  it("a container's own first process (not docker exec) gets its identities from both agents", async () => {
    const script = KINDS.map((k) => `env SPIFFE_ENDPOINT_SOCKET=unix://${socketIn(k)} /w/bin/go-client fetch -timeout 60s > /w/out-${k}.json`).join('; ');
    const c = (await engine.docker(['run', '-d', '--name', 'pid1', '--network', 'none', '-v', `${base}:/w`, '--label', 'app=web', '-e', 'STAGE=prod', engine.env.DOCKER_BUSYBOX_IMAGE, '/bin/sh', '-c', script])).trim();
    await engine.docker(['wait', c], 120_000);
    for (const kind of KINDS) {
      const out = JSON.parse(await readFile(join(base, `out-${kind}.json`), 'utf8')) as FetchOut;
      expect(out.x509Svids?.map((s) => s.spiffeId).sort(), kind).toEqual([sid(kind, 'image'), sid(kind, 'web'), sid(kind, 'web-prod')]);
    }
  }, 180_000);

  it('with container_id_cgroup_matchers and docker_version: the same identities and selectors as with the locator', async () => {
    const c = await runContainer('matchers', { app: 'web', run: 'matchers' }, { STAGE: 'prod' });
    for (const kind of KINDS) {
      const key = MATCHERS(kind);
      expect(await servedIds(c, key, 3), key).toEqual([sid(key, 'image'), sid(key, 'web'), sid(key, 'web-prod')]);
    }
    const viaMatchers = await compareSelectors('docker:label:run:matchers', MATCHERS);
    for (const kind of KINDS) await execFetch(c, kind);
    const viaLocator = await compareSelectors('docker:label:run:matchers');
    expect(viaMatchers).toEqual(viaLocator);
  }, 180_000);

  it("negotiates the real engine's API version from /_ping (dockerd 20.10: 1.41), as spire-agent's client does", async () => {
    const client = new EngineClient();
    try {
      const v = await client.negotiatedVersion(engine.env.DOCKER_SOCKET, AbortSignal.timeout(10_000));
      const server = (await engine.docker(['version', '-f', '{{.Server.APIVersion}}'])).trim();
      expect(v).toBe(server);
      expect(Number(v.split('.')[1])).toBeLessThanOrEqual(Number(MAX_API_VERSION.split('.')[1]));
    } finally {
      client.close();
    }
  });

  it('image_config_digest (spiffe-agent only) matches the real engine image Id', async () => {
    const c = await runContainer('digest', { tier: 'digest' }, {});
    if (agents.has('spiffe-agent')) expect(await servedIds(c, 'spiffe-agent', 1)).toEqual([sid('spiffe-agent', 'digest')]);
    if (agents.has('spire-agent')) expect((await execFetch(c, 'spire-agent')).code).toBe('PermissionDenied');
    await compareSelectors('docker:label:tier:digest');
  }, 180_000);
});
