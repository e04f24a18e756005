/**
 * The one way a test file depends on something outside Node.js (dbus-daemon, libfaketime, the Go
 * module cache, root, writable cgroups). Outside CI a missing tool skips the file's tests with a
 * notice, so `npm test` works on a bare laptop. In CI (CI=true or CI=1) a missing tool is a
 * failure: every test of the file fails with the reason, and .ci/run counts each of them
 * (scripts/ci-count.mjs), so a CI image that lost a package can never turn into a green run.
 *
 *   const skip = requireTool('dbus-daemon', daemon !== undefined, 'apt-get install dbus');
 *   describe.skipIf(skip)('...', () => { ... });
 */
import { beforeAll } from 'vitest';
import { inCI } from './ci.js';

export { inCI };

/**
 * Call at a test file's top level. Returns true when the file's tests must be skipped (the tool is
 * missing, outside CI). In CI it returns false and registers a file-level beforeAll that throws
 * `why`, which fails every test of the file.
 */
export function requireTool(name: string, found: boolean, why: string): boolean {
  if (found) return false;
  if (inCI()) {
    beforeAll(() => {
      throw new Error(`${name} is missing (CI=true: a missing tool fails the tests that need it): ${why}`);
    });
    return false;
  }
  console.warn(`SKIPPED: ${name} is missing, so the tests that need it are left out (in CI this fails): ${why}`);
  return true;
}
