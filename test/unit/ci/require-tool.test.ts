/**
 * test/helpers/require-tool.ts under the project's vitest: the fixtures in
 * test/fixtures/require-tool run once outside CI and once with CI=true, and scripts/ci-count.mjs
 * counts the JSON report as .ci/run does. Outside CI a missing tool skips its tests with a notice;
 * in CI every test of the file fails with the reason.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without type declarations
import { countReport as countReportJs } from '../../../scripts/ci-count.mjs';

interface FileResult {
  name: string;
  status: string;
  message: string;
  assertionResults: { title: string; status: string }[];
}
const countReport = countReportJs as (r: unknown) => { passed: number; failed: number; skipped: number };

const REPO = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const tmp = mkdtempSync(join(tmpdir(), 'require-tool-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function runFixtures(ci: string): { report: { success: boolean; testResults: FileResult[] }; output: string } {
  const out = join(tmp, `ci-${ci || 'unset'}.json`);
  const r = spawnSync(process.execPath, [join(REPO, 'node_modules/vitest/vitest.mjs'), 'run', '--config', join(REPO, 'test/fixtures/require-tool/vitest.config.ts'), `--outputFile.json=${out}`], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, CI: ci },
    timeout: 60_000,
  });
  return { report: JSON.parse(readFileSync(out, 'utf8')), output: `${r.stdout}${r.stderr}` };
}
const file = (results: FileResult[], name: string): FileResult => results.find((f) => basename(f.name) === name)!;

describe('requireTool', () => {
  it('outside CI: a missing tool skips its tests with a notice, and the run passes', () => {
    const { report, output } = runFixtures('');
    expect(report.success).toBe(true);
    expect(output).toContain('SKIPPED: no-such-tool is missing, so the tests that need it are left out (in CI this fails): install it with: apt-get install no-such-tool');
    expect(output).not.toContain('never printed');
    const missing = file(report.testResults, 'missing-tool.fixture.ts');
    expect(missing.assertionResults.map((t) => `${t.title}: ${t.status}`)).toEqual(['one: skipped', 'two: skipped', 'passes outside CI; in CI it fails with its file: passed']);
    expect(countReport(report)).toEqual({ passed: 2, failed: 0, skipped: 2 });
  }, 90_000);

  it('CI=true: every test of the file that lacks the tool fails, with the reason; a file with its tool passes', () => {
    const { report } = runFixtures('true');
    expect(report.success).toBe(false);
    const missing = file(report.testResults, 'missing-tool.fixture.ts');
    expect(missing.status).toBe('failed');
    expect(missing.message).toBe('no-such-tool is missing (CI=true: a missing tool fails the tests that need it): install it with: apt-get install no-such-tool');
    expect(file(report.testResults, 'found-tool.fixture.ts').status).toBe('passed');
    expect(countReport(report)).toEqual({ passed: 1, failed: 3, skipped: 0 });
  }, 90_000);
});
