/** Health as operators probe it: spire-agent's HTTP listener, grpc.health.v1 on the socket, and `healthcheck`. */
import * as grpc from '@grpc/grpc-js';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProto } from '../../src/endpoints/proto.js';
import { AgentProcess, cli, uidEntry } from '../helpers/agent-process.js';

let agent: AgentProcess;
let port: number;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const p = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return p;
}

beforeAll(async () => {
  port = await freePort();
  agent = await AgentProcess.start({
    entries: [uidEntry('/a', 1151)],
    topLevel: `health_checks {
  listener_enabled = true
  bind_address = "127.0.0.1"
  bind_port = "${port}"
  live_path = "/live"
  ready_path = "/ready"
}`,
  });
});
afterAll(async () => agent?.stop());

describe('health', () => {
  it('answers the HTTP live and ready probes once the Workload API serves', async () => {
    const live = await fetch(`http://127.0.0.1:${port}/live`);
    expect(live.status).toBe(200);
    const ready = await fetch(`http://127.0.0.1:${port}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true });
    expect((await fetch(`http://127.0.0.1:${port}/nope`)).status).toBe(404);
  });

  it('serves grpc.health.v1 Check on the Workload API socket without the security header', async () => {
    const pkg = loadProto('grpc/health/v1/health.proto') as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
    const c = new pkg.grpc.health.v1.Health(`unix://${agent.socketPath}`, grpc.credentials.createInsecure());
    const res = await new Promise<{ status: string }>((resolve, reject) =>
      (c as unknown as { Check: (r: unknown, cb: (e: Error | null, r: { status: string }) => void) => void }).Check({}, (e, r) => (e ? reject(e) : resolve(r))),
    );
    expect(res.status).toBe('SERVING');
    c.close();
  });

  it('reports healthy through `spiffe-agent healthcheck`, and unhealthy for a socket nobody serves', async () => {
    const ok = await cli(['healthcheck', '-socketPath', agent.socketPath]);
    expect(ok.code).toBe(0);
    expect(ok.stdout + ok.stderr).toMatch(/Agent is healthy/);
    const bad = await cli(['healthcheck', '-socketPath', '/tmp/nonexistent-spiffe-agent.sock']);
    expect(bad.code).not.toBe(0);
  });
});
