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
  it('adds an identity to an open stream within a second or two of the edit, then withdraws the last one with PermissionDenied', async () => {
    const watch = spawnCli(['api', 'watch', '-socketPath', agent.socketPath], A);
    const out = new Output(watch);
    const err = new Output(watch, 'stderr');
    try {
      await out.until((t) => t.includes('spiffe://example.org/one'), 10_000, 'the first identity');
      const before = out.text.length;
      const t0 = Date.now();
      await agent.writeEntries([uidEntry('/one', A.uid), uidEntry('/two', A.uid)]);
      await out.until((t) => t.slice(before).includes('spiffe://example.org/two'), 5_000, 'the added identity');
      expect(Date.now() - t0).toBeLessThan(3_000);
      expect(field(out.text.slice(before), 'SPIFFE ID').sort()).toEqual(['spiffe://example.org/one', 'spiffe://example.org/two']);

      await agent.writeEntries([uidEntry('/other', B.uid)]);
      await err.until((t) => /PermissionDenied|no identity issued/.test(t), 5_000, 'the stream to be told PermissionDenied');
      const withdrawal = agent.logs.find((l) => l.includes('decision=denied') && l.includes('no longer match'));
      expect(withdrawal).toBeDefined();
    } finally {
      watch.kill('SIGINT');
    }
  });

  it('keeps serving the previous entries when the file is broken', async () => {
    await agent.writeEntries([uidEntry('/kept', A.uid)]);
    await new Promise((r) => setTimeout(r, 800));
    const { writeFile } = await import('node:fs/promises');
    await writeFile(agent.entriesPath, '{"entries": [ this is not json');
    await new Promise((r) => setTimeout(r, 800));
    const r = await cli(['api', 'fetch', 'x509', '-socketPath', agent.socketPath], A);
    expect(field(r.stdout, 'SPIFFE ID')).toEqual(['spiffe://example.org/kept']);
    expect(agent.logs.some((l) => /level=error/.test(l) && l.includes(agent.entriesPath))).toBe(true);
  });
});
