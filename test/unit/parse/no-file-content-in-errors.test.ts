/**
 * An error about a file the agent reads names the file and the fault, never the file's content:
 * the path may lead (by a symlink, or a wrong setting) to another file, such as /etc/shadow or a
 * token, and these errors are logged and printed. Each parser is fed text holding a secret-looking
 * marker and everything the error carries (message, causes, own fields, as a logger would print
 * them with util.inspect) must be free of it.
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentStorage } from '../../../src/authority/server/agent-storage.js';
import { CAStore } from '../../../src/authority/embedded/ca-store.js';
import { parseEntriesFile } from '../../../src/authority/embedded/entries-file.js';
import { parseBundleFile } from '../../../src/authority/embedded/federated-bundle-file.js';
import { parseConfigText } from '../../../src/config/load.js';
import { DiskKeyManager } from '../../../src/keymanager/disk.js';
import { parseJSON } from '../../../src/parse/json.js';

const MARKER = 'S3cr3tMarkerXq7';
/** Shapes of secret files: a shadow line, a bare token, a JSON credential, a PEM-looking key. */
const SECRETS = [
  `root:$6$${MARKER}$abcdefgh:19000:0:99999:7:::\n`,
  `${MARKER}\n`,
  `{"password": ${MARKER}}`,
  `{"keys": {"a": 1}, ${MARKER}: 2}`,
  `'${MARKER}'`,
  `["x" ${MARKER}]`,
  `123${MARKER}`,
];

/** A single character of the text quoted (`found "r"`): JSON's own punctuation is the only one allowed. */
const QUOTED_CHAR = /"[^{}[\],:"]"/;

/** Everything an error carries, as a logger or a crash report would show it. */
function carried(err: unknown): string {
  return inspect(err, { depth: 10, showHidden: false }) + String((err as Error)?.message);
}

async function failure(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'no-content-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('errors about files never quote the file', () => {
  it.each(SECRETS)('the JSON parser (%#)', async (text) => {
    const err = await failure(() => parseJSON(text));
    expect(carried(err)).toMatch(/line \d+, column \d+/);
    expect(carried(err)).not.toContain(MARKER);
    expect(carried(err)).not.toMatch(QUOTED_CHAR);
  });

  it('agent-data.json through a symlink to another file: the file and the fault, not its bytes', async () => {
    const secret = join(dir, 'shadow');
    await writeFile(secret, SECRETS[0]!);
    await symlink(secret, join(dir, 'agent-data.json'));
    const err = await failure(() => AgentStorage.open(dir));
    expect((err as Error).message).toContain(join(dir, 'agent-data.json'));
    expect((err as Error).message).toMatch(/not valid JSON at line 1, column 1/);
    expect(carried(err)).not.toContain(MARKER);
  });

  it('agent-data.json: a field of the wrong kind is named, its value is not', async () => {
    await writeFile(join(dir, 'agent-data.json'), JSON.stringify({ bootstrap_start_time: MARKER }));
    const err = await failure(() => AgentStorage.open(dir));
    expect((err as Error).message).toContain('"bootstrap_start_time" is not an RFC 3339 time');
    expect(carried(err)).not.toContain(MARKER);
  });

  it.each(SECRETS)('keys.json (%#)', async (text) => {
    await writeFile(join(dir, 'keys.json'), text);
    const err = await failure(() => new DiskKeyManager({ directory: dir }).getKeys());
    expect((err as Error).message).toContain(join(dir, 'keys.json'));
    expect(carried(err)).not.toContain(MARKER);
  });

  it('keys.json: a key that is not a key is named by its place', async () => {
    await writeFile(join(dir, 'keys.json'), JSON.stringify({ keys: { 'agent-svid-A': Buffer.from(MARKER).toString('base64') } }));
    const err = await failure(() => new DiskKeyManager({ directory: dir }).getKeys());
    expect((err as Error).message).toContain('key #1 of "keys" is not a base64 PKCS#8 private key');
    expect(carried(err)).not.toContain(MARKER);
    expect(carried(err)).not.toContain(Buffer.from(MARKER).toString('base64'));
  });

  it.each(SECRETS)('the embedded CA manifest (%#)', async (text) => {
    await mkdir(join(dir, 'embedded-ca'));
    await writeFile(join(dir, 'embedded-ca', 'manifest.json'), text);
    const err = await failure(() => new CAStore(dir).load());
    expect((err as Error).message).toContain('manifest.json');
    expect(carried(err)).not.toContain(MARKER);
  });

  it.each(SECRETS)("the embedded CA's generation file (%#)", async (text) => {
    await mkdir(join(dir, 'embedded-ca'));
    const id = '0123456789abcdef';
    await writeFile(join(dir, 'embedded-ca', 'manifest.json'), JSON.stringify({ version: 1, active: id, next: null, retired: [] }));
    await writeFile(join(dir, 'embedded-ca', `${id}.json`), text);
    const err = await failure(() => new CAStore(dir).load());
    expect((err as Error).message).toContain(id);
    expect(carried(err)).not.toContain(MARKER);
  });

  it.each(SECRETS)('the entries file (%#)', async (text) => {
    const err = await failure(() => parseEntriesFile('/etc/spiffe-agent/entries.json', text, 'example.org'));
    expect((err as Error).message).toContain('/etc/spiffe-agent/entries.json');
    expect(carried(err)).not.toContain(MARKER);
    expect(carried(err)).not.toMatch(QUOTED_CHAR);
  });

  it.each(SECRETS)('a federated bundle file (%#)', async (text) => {
    const err = await failure(() => parseBundleFile('partner.org', '/etc/partner.bundle', text));
    expect((err as Error).message).toContain('/etc/partner.bundle');
    expect(carried(err)).not.toContain(MARKER);
  });

  it.each(SECRETS)('agent.conf in HCL (%#)', async (text) => {
    const err = await failure(() => parseConfigText(text, '/etc/spiffe-agent/agent.conf', { expandEnv: false, env: {} }));
    expect((err as Error).message).toContain('/etc/spiffe-agent/agent.conf');
    expect(carried(err)).not.toContain(MARKER);
    expect(carried(err)).not.toMatch(QUOTED_CHAR);
  });

  it.each(SECRETS)('agent.conf in JSON (%#)', async (text) => {
    const err = await failure(() => parseConfigText(text, '/etc/spiffe-agent/agent.json', { expandEnv: false, env: {} }));
    expect((err as Error).message).toContain('/etc/spiffe-agent/agent.json');
    expect(carried(err)).not.toContain(MARKER);
    expect(carried(err)).not.toMatch(QUOTED_CHAR);
  });

  it('HCL names what it found by kind: a token where a setting should be', async () => {
    const err = await failure(() => parseConfigText(`ghp_${MARKER}\n`, '/etc/agent.conf', { expandEnv: false, env: {} }));
    expect((err as Error).message).toContain('expected = or { after the name, found the end of the line');
    const value = await failure(() => parseConfigText(`agent {\n  join_token = ${MARKER}\n}\n`, '/etc/agent.conf', { expandEnv: false, env: {} }));
    expect((value as Error).message).toContain('/etc/agent.conf:2');
    expect(carried(value)).not.toContain(MARKER);
  });
});
