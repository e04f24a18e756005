/**
 * gRPC server reflection on the Workload API socket, asked by grpcurl (grpc-go's reflection client,
 * built by test/interop/setup.sh) of spire-agent v1.13.3 and spiffe-agent, each joined to the same
 * real spire-server, as a uid with no registration entry: both answer `list` with the same
 * services, and `describe` gives the same service definitions except for the methods README
 * "Differences" names (each answers Unimplemented from both agents; only the descriptors differ).
 */
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, UID_NONE, agentConfFor, run, startAgent, startSpireServer, type AgentHandle, type AgentKind, type SpireServer } from '../../helpers/spire/index.js';
import { requireTool } from '../../helpers/require-tool.js';
import { Cleanup, plan, tag } from './fixture.js';

const GRPCURL = join(REPO, 'test/interop/.cache/bin/grpcurl');
const noGrpcurl = requireTool('grpcurl', existsSync(GRPCURL), 'run: bash test/interop/setup.sh (builds test/interop/.cache/bin/grpcurl)');

const cleanup = new Cleanup();
const agents = new Map<AgentKind, AgentHandle>();
let server: SpireServer;
let grpcurl: string;

beforeAll(async () => {
  const bins = plan.require();
  server = cleanup.add(await startSpireServer({ bins, nodeAttestors: { joinToken: true } }));
  for (const kind of ['spire-agent', 'spiffe-agent'] as const) {
    const conf = await agentConfFor(server, { joinToken: await server.generateToken() }, tag(kind, 'reflection'));
    agents.set(kind, cleanup.add(await startAgent(kind, bins, conf)));
  }
  // A copy the test uid can execute wherever the repository lives.
  const dir = await mkdtemp(join(tmpdir(), 'grpcurl-'));
  cleanup.add({ destroy: () => rm(dir, { recursive: true, force: true }) });
  await chmod(dir, 0o755);
  grpcurl = join(dir, 'grpcurl');
  await copyFile(GRPCURL, grpcurl);
  await chmod(grpcurl, 0o755);
}, 180_000);
afterAll(() => cleanup.run());

async function ask(kind: AgentKind, ...args: string[]): Promise<string> {
  const r = await run(grpcurl, ['-unix', '-plaintext', agents.get(kind)!.socketPath, ...args], { uid: UID_NONE, gid: UID_NONE, cwd: '/', timeoutMs: 30_000 });
  expect(r.stderr, `${kind}: grpcurl ${args.join(' ')}`).toBe('');
  expect(r.code).toBe(0);
  return r.stdout;
}

describe.skipIf(plan.skip || noGrpcurl)('gRPC reflection: grpcurl against spire-agent v1.13.3 and spiffe-agent', () => {
  it('list: the same services from both, to a caller with no entry', async () => {
    const theirs = await ask('spire-agent', 'list');
    expect(theirs.split('\n')).toContain('SpiffeWorkloadAPI');
    expect(await ask('spiffe-agent', 'list')).toBe(theirs);
  });

  /** Methods a service lists on one agent only (README "Differences": reflection row). */
  const ONLY: Readonly<Record<string, { ours?: string[]; theirs?: string[] }>> = {
    // Our workload.proto is the newer one (WIT-SVIDs); both agents answer these Unimplemented.
    SpiffeWorkloadAPI: { ours: ['SpiffeWorkloadAPI.FetchWITBundles', 'SpiffeWorkloadAPI.FetchWITSVID'] },
    // grpc-go v1.76's health.proto has List; spire-agent's health server leaves it Unimplemented.
    'grpc.health.v1.Health': { theirs: ['grpc.health.v1.Health.List'] },
  };
  it.each(['SpiffeWorkloadAPI', 'envoy.service.secret.v3.SecretDiscoveryService', 'grpc.health.v1.Health'])('list %s: the same methods', async (svc) => {
    const lines = (t: string, drop: readonly string[] = []): string[] => t.split('\n').filter((l) => l !== '' && !drop.includes(l));
    const ours = await ask('spiffe-agent', 'list', svc);
    const theirs = await ask('spire-agent', 'list', svc);
    expect(lines(ours, ONLY[svc]?.ours)).toEqual(lines(theirs, ONLY[svc]?.theirs));
    // The listed exceptions are still real (the test notices when one goes away).
    for (const m of ONLY[svc]?.ours ?? []) expect(lines(ours)).toContain(m);
    for (const m of ONLY[svc]?.theirs ?? []) expect(lines(theirs)).toContain(m);
  });

  it('describe: every method of the Workload API has the same request and response types', async () => {
    const methods = (t: string): string[] =>
      t
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l.startsWith('rpc ') && !/^rpc FetchWIT/.test(l))
        .sort();
    const theirs = methods(await ask('spire-agent', 'describe', 'SpiffeWorkloadAPI'));
    const ours = methods(await ask('spiffe-agent', 'describe', 'SpiffeWorkloadAPI'));
    expect(ours).toEqual(theirs);
    // And a message with a map and an imported type resolves on ours (grpc-go links the files).
    expect(await ask('spiffe-agent', 'describe', 'X509SVIDResponse')).toContain('map<string, bytes> federated_bundles = 3;');
  });
});
