/** A short X.509 TTL makes rotation visible on an open `api watch` stream within seconds. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentProcess, Output, field, spawnCli, uidEntry } from '../helpers/agent-process.js';

let agent: AgentProcess;
const A = { uid: 1111, gid: 1111 };

beforeAll(async () => {
  agent = await AgentProcess.start({ entries: [uidEntry('/rotating', A.uid, { x509_svid_ttl: 4 })] });
});
afterAll(async () => agent?.stop());

describe('rotation', () => {
  it('pushes a rotated SVID on an open stream at half-life, with the full set each time', async () => {
    const watch = spawnCli(['api', 'watch', '-socketPath', agent.socketPath], A);
    const out = new Output(watch);
    try {
      const started = Date.now();
      await out.until((t) => new Set(field(t, 'SVID Serial')).size >= 3, 60_000, 'three distinct serials');
      const elapsed = Date.now() - started;
      // TTL 4 s: rotation every ~2 s, so the third serial arrives after ~4 s. Sooner than 3 s would
      // mean a rotation loop (notBefore is backdated 10 s, which must not count as lifetime); load
      // only ever makes it later. An upper bound would fail on load: bench/daemon-bounds.mjs has it.
      expect(elapsed).toBeGreaterThan(3_000);
      expect(field(out.text, 'SPIFFE ID').every((id) => id === 'spiffe://example.org/rotating')).toBe(true);
    } finally {
      watch.kill('SIGINT');
    }
  });
});
