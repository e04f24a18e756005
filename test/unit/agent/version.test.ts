/** The version the agent prints and reports comes from package.json, in every layout it is installed in (the CLI's output: test/unit/cli/help.test.ts). */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { agentVersion } from '../../../src/agent/version.js';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const PACKAGE_VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

const temps: string[] = [];
afterEach(() => {
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A package tree under a temporary directory; returns the URL of a module at `modulePath` in it. */
function tree(files: Record<string, string>, modulePath: string): string {
  const root = mkdtempSync(join(tmpdir(), 'agent-version-'));
  temps.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  mkdirSync(join(root, modulePath, '..'), { recursive: true });
  return pathToFileURL(join(root, modulePath)).href;
}

describe('agentVersion', () => {
  it("is package.json's version (from the sources, as the tests run them)", () => {
    expect(PACKAGE_VERSION).toMatch(/^\d+\.\d+\.\d+/);
    expect(agentVersion()).toBe(PACKAGE_VERSION);
  });

  it('finds package.json three levels up, as from dist/src/agent (repo build, image, npm install -g), past a package.json of another package', () => {
    const pkg = JSON.stringify({ name: 'spiffe-agent', version: '9.8.7' });
    expect(agentVersion(tree({ 'package.json': pkg }, 'dist/src/agent/version.js'))).toBe('9.8.7');
    expect(agentVersion(tree({ 'lib/node_modules/spiffe-agent/package.json': pkg, 'lib/node_modules/spiffe-agent/dist/package.json': '{"type":"module"}' }, 'lib/node_modules/spiffe-agent/dist/src/agent/version.js'))).toBe('9.8.7');
    expect(agentVersion(tree({ 'package.json': pkg, 'src/package.json': 'not json' }, 'src/agent/version.ts'))).toBe('9.8.7');
  });

  it('says the installation is broken when no package.json of spiffe-agent is above it', () => {
    const from = tree({ 'package.json': JSON.stringify({ name: 'other', version: '1.0.0' }) }, 'dist/src/agent/version.js');
    expect(() => agentVersion(from)).toThrow(expect.objectContaining({ code: 'package_json_missing', message: expect.stringMatching(/^agent: no package.json of spiffe-agent with a version above .*; reinstall the package$/) }));
  });
});
