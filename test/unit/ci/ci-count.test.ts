/**
 * The count .ci/run ends with (scripts/ci-count.mjs), against what vitest really writes: the
 * fixtures in test/fixtures/ci-count run under the project's vitest, and the JSON report they
 * produce is counted. A file whose beforeAll throws must count every one of its tests as failed,
 * where vitest's own numFailedTests counts none of them.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without type declarations
import { countFiles as countFilesJs, countReport as countReportJs } from '../../../scripts/ci-count.mjs';

interface Count {
  passed: number;
  failed: number;
  skipped: number;
}
interface FileResult {
  name: string;
  status: string;
  assertionResults: { status: string }[];
}
interface Report {
  numPassedTests: number;
  numFailedTests: number;
  success: boolean;
  testResults: FileResult[];
}
const countReport = countReportJs as (r: unknown) => Count;
const countFiles = countFilesJs as (paths: string[], log?: (s: string) => void) => Count & { failures: string[] };

const REPO = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const FIXTURES = join(REPO, 'test/fixtures/ci-count');
const tmp = mkdtempSync(join(tmpdir(), 'ci-count-'));
const out = join(tmp, 'fixtures.json');
let report: Report;

beforeAll(() => {
  const r = spawnSync(process.execPath, [join(REPO, 'node_modules/vitest/vitest.mjs'), 'run', '--config', join(FIXTURES, 'vitest.config.ts'), `--outputFile.json=${out}`], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, CI: '' },
    timeout: 60_000,
  });
  expect(r.status, `${r.stdout}${r.stderr}`).toBe(1); // the fixtures fail, on purpose
  report = JSON.parse(readFileSync(out, 'utf8')) as Report;
}, 90_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const byFile = (name: string): Count => countReport({ ...report, success: true, testResults: report.testResults.filter((f) => basename(f.name) === name) });

describe('ci-count on vitest 4 JSON reports', () => {
  it('vitest reports every fixture file, and by itself counts only the failing test body', () => {
    expect(report.testResults.map((f) => basename(f.name)).sort()).toEqual([
      'after-all-fails.fixture.ts',
      'before-all-fails.fixture.ts',
      'describe-before-all-fails.fixture.ts',
      'failing-test.fixture.ts',
      'load-fails.fixture.ts',
      'passes.fixture.ts',
    ]);
    // The undercount this script exists for: 5 + 2 tests behind failed beforeAll hooks are "skipped".
    expect(report.numFailedTests).toBe(1);
  });

  it('a file-level beforeAll that throws: all 5 tests failed', () => {
    expect(byFile('before-all-fails.fixture.ts')).toEqual({ passed: 0, failed: 5, skipped: 0 });
  });

  it('a describe-level beforeAll that throws: its 2 tests failed, the other describe passed', () => {
    expect(byFile('describe-before-all-fails.fixture.ts')).toEqual({ passed: 1, failed: 2, skipped: 0 });
  });

  it('a file that does not load: one failure', () => {
    expect(byFile('load-fails.fixture.ts')).toEqual({ passed: 0, failed: 1, skipped: 0 });
  });

  it('an afterAll that throws: the file failed, so its test that did not pass (a skip) counts as failed', () => {
    expect(byFile('after-all-fails.fixture.ts')).toEqual({ passed: 1, failed: 1, skipped: 0 });
  });

  it('a failing test body and a passing file count as vitest says; a skip in a passing file stays a skip', () => {
    expect(byFile('failing-test.fixture.ts')).toEqual({ passed: 1, failed: 1, skipped: 0 });
    expect(byFile('passes.fixture.ts')).toEqual({ passed: 2, failed: 0, skipped: 1 });
    expect(countReport(report)).toEqual({ passed: 5, failed: 10, skipped: 1 });
  });

  it('a missing report, a summary-only report and an unsuccessful report with no failure each count', () => {
    const smoke = join(tmp, 'smoke.json');
    writeFileSync(smoke, JSON.stringify({ numPassedTests: 0, numFailedTests: 1, success: false }));
    const unhandled = join(tmp, 'unhandled.json');
    writeFileSync(unhandled, JSON.stringify({ ...report, success: false, testResults: report.testResults.filter((f) => basename(f.name) === 'passes.fixture.ts') }));
    const lines: string[] = [];
    expect(countFiles([join(tmp, 'absent.json'), smoke, unhandled], (s) => lines.push(s))).toEqual({
      passed: 2,
      failed: 3,
      skipped: 1,
      failures: ['smoke: failed', 'unhandled: failed outside any test (an unhandled error)'],
    });
    expect(lines).toEqual([expect.stringContaining('absent.json (missing): counted as one failure')]);
  });

  it('prints the line .ci/run ends with and exits 1 on a failure', () => {
    const r = spawnSync(process.execPath, [join(REPO, 'scripts/ci-count.mjs'), out], { encoding: 'utf8' });
    expect(r.stdout.trim().split('\n').pop()).toBe('5 passed, 10 failed');
    expect(r.status).toBe(1);
  });

  it('names each failure before the count: report, file, test and the first line of its error', () => {
    const r = spawnSync(process.execPath, [join(REPO, 'scripts/ci-count.mjs'), out], { encoding: 'utf8', cwd: REPO });
    const listed = r.stdout.split('\n').filter((l) => l.startsWith('FAILED '));
    expect(listed).toHaveLength(10); // one per failure counted
    expect(listed).toContain('FAILED fixtures: test/fixtures/ci-count/failing-test.fixture.ts > fails: AssertionError: expected 1 to be 2 // Object.is equality');
    expect(listed.filter((l) => l.includes('/before-all-fails.fixture.ts >'))).toHaveLength(5);
    expect(listed.some((l) => l.startsWith('FAILED fixtures: test/fixtures/ci-count/load-fails.fixture.ts: '))).toBe(true);
  });
});
