#!/usr/bin/env node
/**
 * The "N passed, N failed" line that ends .ci/run, from vitest's JSON reports.
 *
 * vitest's own numFailedTests counts only tests whose body failed. When a file's beforeAll throws
 * (SPIRE missing, a tool missing in CI) vitest marks every test of the file "skipped", and a file
 * that fails to load has no tests at all; both would vanish from a count built on numFailedTests.
 * So the count is per file: in a file vitest reports as failed, every test that did not pass counts
 * as failed, and a failed file with none (an afterAll that threw, a file that did not load) counts
 * as one failure. Tests of a passing file count as vitest says (a skip there is a skip).
 *
 * A report without testResults (the bench smoke's one-line summary) counts by its numbers; a
 * report that is missing, or that says it did not succeed while nothing counted as failed
 * (an unhandled error outside any test), adds one failure.
 *
 * Before that line it names what failed (report, file, test, the first line of the error), at most
 * MAX_LISTED of them: CI shows only the end of its output, and a count alone does not say where to look.
 *
 * Usage: node scripts/ci-count.mjs <report.json>... ; exits 1 when anything failed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, relative } from 'node:path';
import { pathToFileURL } from 'node:url';

const MAX_LISTED = 25;

/** One vitest JSON report → { passed, failed, skipped }. */
export function countReport(report) {
  if (!Array.isArray(report.testResults)) {
    const passed = report.numPassedTests ?? 0;
    let failed = report.numFailedTests ?? 0;
    if (report.success === false && failed === 0) failed = 1;
    return { passed, failed, skipped: 0 };
  }
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  for (const file of report.testResults) {
    const tests = file.assertionResults ?? [];
    const ok = tests.filter((t) => t.status === 'passed').length;
    passed += ok;
    if (file.status === 'failed') {
      failed += Math.max(1, tests.length - ok);
    } else {
      failed += tests.filter((t) => t.status === 'failed').length;
      skipped += tests.length - ok - tests.filter((t) => t.status === 'failed').length;
    }
  }
  if (report.success === false && failed === 0) failed = 1;
  return { passed, failed, skipped };
}

/** The first non-empty line of a failure message, without colour codes, at most 200 characters. */
function firstLine(messages) {
  const text = (Array.isArray(messages) ? messages : []).join('\n').replace(/\u001b\[[0-9;]*m/g, '');
  const line = text.split('\n').find((l) => l.trim() !== '') ?? '';
  return line.trim().slice(0, 200);
}

/** One vitest JSON report → a line per failure, in the same terms countReport counts them. */
export function failures(report, label = '') {
  if (!Array.isArray(report.testResults)) {
    return countReport(report).failed > 0 ? [`${label}: failed`] : [];
  }
  const out = [];
  for (const file of report.testResults) {
    const name = relative(process.cwd(), file.name ?? '?');
    const tests = file.assertionResults ?? [];
    const bad = tests.filter((t) => t.status === 'failed' || (file.status === 'failed' && t.status !== 'passed'));
    for (const t of bad) out.push(`${label}: ${name} > ${t.fullName ?? t.title}: ${firstLine(t.failureMessages) || t.status}`);
    if (file.status === 'failed' && bad.length === 0) out.push(`${label}: ${name}: ${firstLine([file.message ?? '']) || 'failed outside any test'}`);
  }
  if (report.success === false && out.length === 0) out.push(`${label}: failed outside any test (an unhandled error)`);
  return out;
}

/** Report files → totals, with one line per missing or unreadable report. */
export function countFiles(paths, log = console.log) {
  const total = { passed: 0, failed: 0, skipped: 0, failures: [] };
  for (const p of paths) {
    let r;
    try {
      if (!existsSync(p)) throw new Error('missing');
      const report = JSON.parse(readFileSync(p, 'utf8'));
      r = countReport(report);
      total.failures.push(...failures(report, basename(p, '.json')));
    } catch (e) {
      log(`no results from ${p} (${e instanceof Error ? e.message : e}): counted as one failure`);
      total.failed += 1;
      continue;
    }
    total.passed += r.passed;
    total.failed += r.failed;
    total.skipped += r.skipped;
  }
  return total;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const t = countFiles(process.argv.slice(2));
  for (const line of t.failures.slice(0, MAX_LISTED)) console.log(`FAILED ${line}`);
  if (t.failures.length > MAX_LISTED) console.log(`FAILED ... and ${t.failures.length - MAX_LISTED} more`);
  if (t.skipped) console.log(`(${t.skipped} skipped in passing files)`);
  console.log(`${t.passed} passed, ${t.failed} failed`);
  process.exitCode = t.failed > 0 ? 1 : 0;
}
