/**
 * spiffe-agent with KeyManager "tpm" (on swtpm) against the real spire-server v1.13.3: it attests
 * with a join token and serves SVIDs; the key its agent SVID certifies is the one sealed in
 * data_dir; a kill -9 and restart resumes from the sealed key without attesting again (the token
 * is used up, the server keeps one agent with the same serial, the log says it resumed); and the
 * same data_dir started against another TPM fails at start, naming the cause, before anything
 * reaches the server.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEY_FILE, decodeKeyFile } from '../../../src/keymanager/tpm/index.js';
import { requireTool } from '../../helpers/require-tool.js';
import { AgentHandle, UID_A, agentConfFor, startAgent, startSpireServer, waitForSvid, type SpireBinaries, type SpireServer } from '../../helpers/spire/index.js';
import { Swtpm, SWTPM_WHY, swtpmFound } from '../../helpers/tpm/swtpm.js';
import { Cleanup, id, plan, uidEntry } from './fixture.js';

const noSwtpm = requireTool('swtpm', swtpmFound(), SWTPM_WHY);
let bins: SpireBinaries;
let server: SpireServer;
let tpm: Swtpm;
let work: string;
const cleanup = new Cleanup();

beforeAll(async () => {
  if (plan.skip || noSwtpm) return;
  bins = plan.require();
  work = await mkdtemp(join(tmpdir(), 'it-tpm-km-'));
  cleanup.defer(() => rm(work, { recursive: true, force: true }));
  tpm = await Swtpm.start();
  cleanup.defer(() => tpm.stop());
  server = cleanup.add(await startSpireServer({ bins, cacheReloadInterval: '1s' }));
});
afterAll(() => cleanup.run());

async function serverView(agentId: string): Promise<{ count: number; serial: string }> {
  const all = (await server.listAgents()).filter((a) => a.id === agentId);
  return { count: all.length, serial: all[0]?.serial ?? '' };
}

/** The public key (SPKI DER, hex) of the agent SVID in data_dir/agent-data.json. */
async function agentSVIDKey(dataDir: string): Promise<string> {
  const data = JSON.parse(await readFile(join(dataDir, 'agent-data.json'), 'utf8')) as { svid: string[] };
  const pem = Buffer.from(data.svid[0]!, 'base64').toString('utf8');
  return new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' }).toString('hex');
}

describe.skipIf(plan.skip || noSwtpm)('spiffe-agent with KeyManager "tpm" and spire-server v1.13.3', () => {
  it('attests, keeps the SVID key sealed, resumes after kill -9 without attesting, and refuses another TPM before sending anything', async () => {
    const t = 'ours-tpm-km';
    const alias = id(`/node/${t}`);
    const token = await server.generateToken(alias);
    await server.createEntries([uidEntry(id(`/${t}/a`), alias, UID_A)]);
    const conf = await agentConfFor(server, { joinToken: token, keyManager: 'tpm', tpmDevicePath: tpm.socket }, t);
    const agent = cleanup.add(await startAgent('spiffe-agent', bins, conf));
    await waitForSvid(agent, UID_A, id(`/${t}/a`));
    const agentId = server.agentIdForToken(token);
    const before = await serverView(agentId);
    expect(before.count).toBe(1);

    // The agent's private key is only in the TPM-sealed file; the SVID certifies its key.
    const files = await readdir(agent.dataDir);
    expect(files).toContain(KEY_FILE);
    expect(files).not.toContain('keys.json');
    const sealed = decodeKeyFile(await readFile(join(agent.dataDir, KEY_FILE)), KEY_FILE);
    const svidKey = await agentSVIDKey(agent.dataDir);
    expect(sealed.keys.map((k) => Buffer.from(k.spki).toString('hex'))).toContain(svidKey);
    expect(agent.daemon.lines.some((l) => l.includes('Generated a key and sealed it with the TPM'))).toBe(true);

    // kill -9 and start again: the sealed key and stored SVID are resumed, no new attestation.
    await agent.kill9();
    expect(await tpm.loaded(), 'the agent holds no TPM object between uses').toEqual([]);
    await agent.start();
    await waitForSvid(agent, UID_A, id(`/${t}/a`));
    expect(await serverView(agentId)).toEqual(before);
    const restarted = agent.daemon.lines.join('\n');
    expect(restarted).toMatch(/Resumed keys sealed by the TPM/);
    expect(restarted).toMatch(/SVID loaded/);
    expect(restarted).not.toMatch(/Starting node attestation/);
    await agent.stop();

    // The same data_dir with another TPM (another provisioning: other seeds): a clear error at start.
    const other = await Swtpm.start({ cache: join(work, 'other-swtpm') });
    cleanup.defer(() => other.stop());
    const moved = cleanup.add(new AgentHandle('spiffe-agent', { ...conf, tpmDevicePath: other.socket }, bins));
    await moved.start({ waitReady: false });
    const log = await moved.waitExit();
    expect(moved.daemon.exitInfo()).not.toMatch(/exit code 0,/);
    expect(log).toContain(`keys in ${moved.dataDir} were sealed by another TPM, or this TPM was cleared since`);
    expect(log).not.toMatch(/Starting node attestation/);
    expect(await serverView(agentId)).toEqual(before);
    expect(await other.loaded()).toEqual([]);
  });
});
