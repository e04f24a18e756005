/** The embedded CA lives in data_dir: a restart, graceful or kill -9, serves the same trust bundle. */
import { readFileSync, statSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentProcess, cli, field, uidEntry } from '../helpers/agent-process.js';

const A = { uid: 1131, gid: 1131 };

async function caSerials(agent: AgentProcess): Promise<string[]> {
  const r = await cli(['api', 'fetch', 'x509', '-socketPath', agent.socketPath, '-write', agent.dir + '/out'], { uid: 0, gid: 0 });
  void r;
  const w = await cli(['api', 'fetch', 'x509', '-socketPath', agent.socketPath], A);
  expect(w.code).toBe(0);
  return field(w.stdout, 'CA #1 Valid Until');
}

describe('restart with the same data_dir', () => {
  it.each(['SIGTERM', 'SIGKILL'] as const)('keeps the same CA after %s', async (signal) => {
    const entries = [uidEntry('/a', A.uid)];
    const first = await AgentProcess.start({ entries });
    const before = await caSerials(first);
    const caDir = join(first.dir, 'data', 'embedded-ca');
    for (const f of readdirSync(caDir)) {
      if (f.endsWith('.pem') && f.includes('key')) expect(statSync(join(caDir, f)).mode & 0o777).toBe(0o600);
    }
    const manifest = readFileSync(join(caDir, 'manifest.json'), 'utf8');
    await first.stop(signal, { keepDir: true });
    const second = await AgentProcess.start({ entries, dir: first.dir });
    try {
      expect(await caSerials(second)).toEqual(before);
      expect(readFileSync(join(caDir, 'manifest.json'), 'utf8')).toBe(manifest);
    } finally {
      await second.stop();
    }
  });
});
