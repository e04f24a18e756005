/**
 * CI runs the side-by-side benchmark (bench/compare.mjs) as a short smoke pass, so it cannot rot:
 * real spire-server and spire-agent v1.13.3 (scripts/spire.sh, or SPIRE_BIN_DIR), our daemon, and
 * the go-spiffe client in bench/compare-client. Nothing is timed here; the pass must end with
 * every figure present for both agents, every connection served and every stream reached.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { requireTool } from '../helpers/require-tool.js';

const REPO = resolve(import.meta.dirname, '../..');
type Results = Record<'spire-agent' | 'spiffe-agent', Record<string, { v: number; load: number }>>;

const notRoot = requireTool('root', process.getuid?.() === 0, 'the bench spawns clients under test uids; run as root');

describe.skipIf(notRoot)('bench/compare.mjs smoke (BENCH_SMOKE=1)', () => {
  it('runs both agents through every measure', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
    const file = join(dir, 'results.json');
    try {
      const r = await new Promise<{ code: number | null; out: string }>((done) => {
        const p = spawn(process.execPath, [join(REPO, 'bench/compare.mjs')], {
          env: { ...process.env, BENCH_SMOKE: '1', BENCH_RESULTS: file },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        p.stdout.on('data', (c) => (out += c));
        p.stderr.on('data', (c) => (out += c));
        const t = setTimeout(() => p.kill('SIGKILL'), 900_000);
        p.once('close', (code) => (clearTimeout(t), done({ code, out })));
      });
      expect(r.code, r.out).toBe(0);
      const res = JSON.parse(readFileSync(file, 'utf8')) as Results;
      const spire = res['spire-agent'];
      const ours = res['spiffe-agent'];
      expect(Object.keys(ours).sort()).toEqual(Object.keys(spire).sort());
      for (const [m, x] of Object.entries(ours)) {
        expect(Number.isFinite(x.v), `${m}: ${r.out}`).toBe(true);
        expect(Number.isFinite(spire[m]!.v), `${m}: ${r.out}`).toBe(true);
      }
      for (const agent of [spire, ours]) {
        expect(agent['50 at once: served']!.v, r.out).toBe(50);
        expect(agent['100 at once: served']!.v, r.out).toBe(100);
        expect(agent['rotation to 50 streams: streams reached']!.v, r.out).toBe(50);
        expect(agent['agent start → first SVID served (ms)']!.v).toBeGreaterThan(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 900_000);
});
