/** Edits to the registration-entries file reach open streams without dropping them. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, Output, cli, field, spawnCli, uidEntry } from '../helpers/agent-process.js';

let agent: AgentProcess;
const A = { uid: 1121, gid: 1121 };
const B = { uid: 1122, gid: 1122 };

beforeAll(async () => {
  agent = await AgentProcess.start({ entries: [uidEntry('/one', A.uid)] });
});
afterAll(async () => agent?.stop());

describe('entries file reload', () => {
  it('adds an identity to an open stream after the edit, then withdraws the last one with PermissionDenied', async () => {
    const watch = spawnCli(['api', 'watch', '-socketPath', agent.socketPath], A);
    const out = new Output(watch);
    const err = new Output(watch, 'stderr');
    try {
      await out.until((t) => t.includes('spiffe://example.org/one'), 10_000, 'the first identity');
      const before = out.text.length;
      await agent.writeEntries([uidEntry('/one', A.uid), uidEntry('/two', A.uid)]);
      // How soon is bench/daemon-bounds.mjs's to measure; here, that it arrives on the same stream.
      await out.until((t) => t.slice(before).includes('spiffe://example.org/two'), 30_000, 'the added identity');
      expect(field(out.text.slice(before), 'SPIFFE ID').sort()).toEqual(['spiffe://example.org/one', 'spiffe://example.org/two']);

      await agent.writeEntries([uidEntry('/other', B.uid)]);
      await err.until((t) => /PermissionDenied|no identity issued/.test(t), 30_000, 'the stream to be told PermissionDenied');
      const withdrawal = agent.logs.find((l) => l.includes('decision=denied') && l.includes('no longer match'));
      expect(withdrawal).toBeDefined();
    } finally {
      watch.kill('SIGINT');
    }
  });

  it('keeps serving the previous entries when the file is broken', async () => {
    let mark = agent.logs.length;
    await agent.writeEntries([uidEntry('/kept', A.uid)]);
    await agent.logged((l) => l.includes('Loaded registration entries') && l.includes('count=1'), 30_000, 'the /kept entries', mark);
    mark = agent.logs.length;
    const { writeFile } = await import('node:fs/promises');
    await writeFile(agent.entriesPath, '{"entries": [ this is not json');
    // The error line proves the agent read the broken file; only then does "still served" mean anything.
    await agent.logged((l) => /level=error/.test(l) && l.includes(agent.entriesPath) && l.includes('keeping the previous entries'), 30_000, 'the broken file', mark);
    const r = await cli(['api', 'fetch', 'x509', '-socketPath', agent.socketPath], A);
    expect(field(r.stdout, 'SPIFFE ID')).toEqual(['spiffe://example.org/kept']);
  });
});
