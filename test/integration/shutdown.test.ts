/**
 * Shutdown always finishes: the real daemon gets SIGTERM while real clients hold it open
 * (a watcher, a client that opened a call and never finished it, a connection that never
 * spoke). Open streams end at once with UNAVAILABLE (one that never answered, shortly before
 * the grace period ends), anything else gets the grace period, and a second signal exits at once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentProcess, Output, sleep, spawnCli, uidEntry } from '../helpers/agent-process.js';
import { waitExit } from '../helpers/processes.js';

const UID = process.getuid?.() ?? 0;
const ENTRIES = [uidEntry('/me', UID)];

/**
 * A client that opens a unary Workload API call and never sends its request, plus a
 * second connection that never sends a byte: what leaked or stuck clients look like.
 */
function hungClient(socketPath: string): ChildProcess {
  const code = `
    const http2 = require('node:http2'), net = require('node:net');
    const c = http2.connect('http://localhost', { createConnection: () => net.connect(${JSON.stringify(socketPath)}) });
    c.on('error', () => {});
    const r = c.request({ ':method': 'POST', ':path': '/SpiffeWorkloadAPI/FetchJWTSVID', 'content-type': 'application/grpc',
      te: 'trailers', 'workload.spiffe.io': 'true' }, { endStream: false });
    r.on('error', () => {});
    let up = 0;
    const ready = () => { if (++up === 2) console.log('connected'); };
    r.on('ready', ready);
    const raw = net.connect(${JSON.stringify(socketPath)}, ready);
    raw.on('error', () => {});
    setInterval(() => {}, 1e6);`;
  return spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'ignore'] });
}

/** A client that opens an SDS StreamSecrets call and never sends its request; prints how the call ended. */
function silentStreamClient(socketPath: string): ChildProcess {
  const code = `
    const http2 = require('node:http2'), net = require('node:net');
    const c = http2.connect('http://localhost', { createConnection: () => net.connect(${JSON.stringify(socketPath)}) });
    c.on('error', () => {});
    const r = c.request({ ':method': 'POST', ':path': '/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets',
      'content-type': 'application/grpc', te: 'trailers' }, { endStream: false });
    r.on('ready', () => console.log('connected'));
    r.on('response', (h) => { if (h['grpc-status'] !== undefined) console.log('status ' + h['grpc-status']); });
    r.on('trailers', (t) => console.log('status ' + t['grpc-status']));
    r.on('error', (e) => console.log('error ' + (e.code || e.message)));
    setInterval(() => {}, 1e6);`;
  return spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'ignore'] });
}

async function exitWithin(agent: AgentProcess, ms: number): Promise<{ code: number | null; signal: string | null; elapsed: number }> {
  const started = Date.now();
  const p = agent.proc;
  const exited = p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => p.once('exit', () => r()));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((r) => (timer = setTimeout(r, ms)));
  await Promise.race([exited, timeout]);
  clearTimeout(timer);
  return { code: p.exitCode, signal: p.signalCode, elapsed: Date.now() - started };
}

describe('shutdown', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });
  const track = <T extends ChildProcess>(child: T): T => {
    cleanup.push(async () => {
      child.kill('SIGKILL');
      await waitExit(child);
    });
    return child;
  };
  const startAgent = async (agentLines = ''): Promise<AgentProcess> => {
    const agent = await AgentProcess.start({ entries: ENTRIES, agent: agentLines });
    cleanup.push(() => agent.stop('SIGKILL'));
    return agent;
  };

  it('ends an open watch stream with UNAVAILABLE and exits 0 at once on SIGTERM', async () => {
    const agent = await startAgent();
    const watcher = track(spawnCli(['api', 'watch', '-socketPath', agent.socketPath], { uid: UID, gid: process.getgid?.() ?? 0 }));
    const out = new Output(watcher);
    const err = new Output(watcher, 'stderr');
    await out.until((t) => t.includes('SPIFFE ID'), 15_000, 'the first X.509 update');
    agent.proc.kill('SIGTERM');
    // Well inside the default 5 s grace period: the stream is ended, not waited for.
    const r = await exitWithin(agent, 4000);
    expect(r).toMatchObject({ code: 0, signal: null });
    await err.until((t) => /shutting down/.test(t), 5000, 'the watcher to see the stream end');
    expect(err.text).toMatch(/Unavailable|UNAVAILABLE|code = 14|\b14\b/i);
  });

  it('closes stuck and silent connections after the grace period and exits 0', async () => {
    const agent = await startAgent('shutdown_grace_period = "1s"');
    const hung = track(hungClient(agent.socketPath));
    await new Output(hung).until((t) => t.includes('connected'), 10_000, 'the hung client to connect');
    await sleep(300); // its call's headers reach the agent
    agent.proc.kill('SIGTERM');
    const r = await exitWithin(agent, 6000);
    expect(r).toMatchObject({ code: 0, signal: null });
    expect(r.elapsed).toBeGreaterThanOrEqual(900);
  });

  it('ends a stream that never answered with UNAVAILABLE shortly before the grace period ends, not with its connection', async () => {
    const agent = await startAgent('shutdown_grace_period = "2s"');
    const client = track(silentStreamClient(agent.socketPath));
    const out = new Output(client);
    await out.until((t) => t.includes('connected'), 10_000, 'the stream to open');
    await sleep(300); // its headers reach the agent
    agent.proc.kill('SIGTERM');
    const r = await exitWithin(agent, 6000);
    expect(r).toMatchObject({ code: 0, signal: null });
    await out.until((t) => /status|error/.test(t.replace('connected', '')), 2000, 'the stream to end');
    expect(out.text).toMatch(/status 14/);
    expect(out.text).not.toMatch(/error/);
  });

  it('exits at once on a second SIGTERM or SIGINT while the grace period runs', async () => {
    for (const second of ['SIGTERM', 'SIGINT'] as const) {
      const agent = await startAgent('shutdown_grace_period = "60s"');
      const hung = track(hungClient(agent.socketPath));
      await new Output(hung).until((t) => t.includes('connected'), 10_000, 'the hung client to connect');
      await sleep(300);
      agent.proc.kill('SIGTERM');
      // Still waiting on the stuck call, and rightly: it has 60 s.
      expect(await exitWithin(agent, 700)).toMatchObject({ code: null, signal: null });
      agent.proc.kill(second);
      const r = await exitWithin(agent, 3000);
      expect(r.code).toBe(second === 'SIGTERM' ? 143 : 130);
    }
  });
});
