/**
 * KeyManager "tpm" against swtpm: keys are sealed by the TPM, a restart (a new TpmClient) unseals
 * the same keys, the TPM's object slots are left as they were found, and a key file this TPM
 * cannot unseal (another provisioned TPM, or this one after TPM2_Clear) is a clear typed error.
 */
import { verify } from 'node:crypto';
import { chmod, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { KEY_FILE, TpmKeyManager, decodeKeyFile, encodeKeyFile } from '../../src/keymanager/tpm/index.js';
import type { ManagedKey } from '../../src/keymanager/types.js';
import type { Logger } from '../../src/telemetry/logger.js';
import { ALG, OBJECT_ATTR, parsePublic } from '../../src/tpm/index.js';
import { openTpm } from '../../src/tpm/open-tpm.js';
import { requireTool } from '../helpers/require-tool.js';
import { Swtpm, SWTPM_WHY, swtpmFound } from '../helpers/tpm/swtpm.js';

const skip = requireTool('swtpm', swtpmFound(), SWTPM_WHY);

/** A logger that keeps every line, to show that no key material reaches a log. */
function recordingLog(lines: string[]): Logger {
  const log: Logger = {
    child: () => log,
    trace: (o: unknown, m?: string) => void lines.push(JSON.stringify([o, m])),
    debug: (o: unknown, m?: string) => void lines.push(JSON.stringify([o, m])),
    info: (o: unknown, m?: string) => void lines.push(JSON.stringify([o, m])),
    warn: (o: unknown, m?: string) => void lines.push(JSON.stringify([o, m])),
    error: (o: unknown, m?: string) => void lines.push(JSON.stringify([o, m])),
  } as unknown as Logger;
  return log;
}

async function signsAs(key: ManagedKey, spki: Uint8Array): Promise<boolean> {
  const data = Buffer.from('attest me');
  const sig = await key.sign(data);
  return verify('sha256', data, { key: Buffer.from(spki), format: 'der', type: 'spki', dsaEncoding: 'der' }, sig);
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe.skipIf(skip)('KeyManager "tpm" on swtpm', () => {
  let tpm: Swtpm;
  let other: Swtpm | undefined;
  let work: string;
  const logs: string[] = [];

  const open = (directory: string, t: Swtpm = tpm, ownerHierarchyPassword = '') =>
    TpmKeyManager.open({ config: { directory, tpmDevicePath: t.socket, ownerHierarchyPassword }, openTpm, log: recordingLog(logs), clock: systemClock });

  beforeAll(async () => {
    tpm = await Swtpm.start();
    work = await mkdtemp(join(tmpdir(), 'km-tpm-'));
  });
  afterAll(async () => {
    await tpm?.stop();
    await other?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('seals a new key into a 0600 file, and a restart with a new TPM client unseals the same keys', async () => {
    const dir = join(work, 'restart');
    const first = await open(dir);
    expect(await first.getKeys()).toEqual([]);
    const a = await first.generateKey('agent-svid-A');
    expect(await signsAs(a, a.publicKeySpki)).toBe(true);
    expect((await stat(join(dir, KEY_FILE))).mode & 0o777).toBe(0o600);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect(await tpm.loaded()).toEqual([]);
    await first.close();

    const second = await open(dir);
    const [again] = await second.getKeys();
    expect(again?.id).toBe('agent-svid-A');
    expect(hex(again!.publicKeySpki)).toBe(hex(a.publicKeySpki));
    // The unsealed key is the same private key: it signs for the recorded public key.
    expect(await signsAs(again!, a.publicKeySpki)).toBe(true);
    const tls = await again!.unsealForTLS();
    expect(tls.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');

    const b = await second.generateKey('agent-svid-B');
    const c = await second.generateKey('agent-svid-A'); // replaces A
    expect(hex(c.publicKeySpki)).not.toBe(hex(a.publicKeySpki));
    await second.close();
    const third = await open(dir);
    const ids = Object.fromEntries((await third.getKeys()).map((k) => [k.id, hex(k.publicKeySpki)]));
    expect(ids).toEqual({ 'agent-svid-A': hex(c.publicKeySpki), 'agent-svid-B': hex(b.publicKeySpki) });
    expect(await tpm.loaded()).toEqual([]);
  });

  it('the key file holds no private key: only TPM blobs and public keys', async () => {
    const dir = join(work, 'no-secret');
    const km = await open(dir);
    const k = await km.generateKey('agent-svid-A');
    const tls = await k.unsealForTLS();
    const d = Buffer.from(tls.export({ format: 'jwk' }).d!, 'base64url');
    const pkcs8 = tls.export({ format: 'der', type: 'pkcs8' });
    const file = await readFile(join(dir, KEY_FILE));
    expect(file.includes(d)).toBe(false);
    expect(file.includes(pkcs8)).toBe(false);
    // A sealed data object bound to this TPM and parent, without a password to guess (noDA).
    const pub = parsePublic(decodeKeyFile(file, KEY_FILE).keys[0]!.public).area;
    expect(pub.type).toBe(ALG.KEYEDHASH);
    const want = OBJECT_ATTR.fixedTPM | OBJECT_ATTR.fixedParent | OBJECT_ATTR.userWithAuth | OBJECT_ATTR.noDA;
    expect(pub.attributes).toBe(want);
    for (const line of logs) {
      expect(line).not.toContain(d.toString('hex'));
      expect(line).not.toContain(d.toString('base64url'));
      expect(line).not.toContain(pkcs8.toString('base64'));
    }
    expect(logs.some((l) => l.includes('Generated a key and sealed it with the TPM'))).toBe(true);
  });

  it('tells that it resumed, and removes the temp file of an interrupted write', async () => {
    const dir = join(work, 'resume-log');
    await (await open(dir)).generateKey('agent-svid-A');
    await writeFile(join(dir, `.${KEY_FILE}.abcdef.tmp`), 'half');
    logs.length = 0;
    await open(dir);
    expect(logs.some((l) => l.includes('Resumed keys sealed by the TPM') && l.includes('agent-svid-A'))).toBe(true);
    expect(await readdir(dir)).toEqual([KEY_FILE]);
  });

  it('a sealed blob altered in the file (checksum recomputed) is keymanager_corrupt naming the key, and nothing stays loaded', async () => {
    const dir = join(work, 'altered');
    await (await open(dir)).generateKey('agent-svid-A');
    const f = decodeKeyFile(await readFile(join(dir, KEY_FILE)), 'x');
    const priv = Buffer.from(f.keys[0]!.private);
    priv[priv.length - 1] = priv[priv.length - 1]! ^ 0xff;
    await writeFile(join(dir, KEY_FILE), encodeKeyFile({ srkName: f.srkName, keys: [{ ...f.keys[0]!, private: priv }] }));
    await expect(open(dir)).rejects.toMatchObject({ code: 'keymanager_corrupt', message: expect.stringMatching(/the TPM refused the sealed blob of key "agent-svid-A"/) });
    expect(await tpm.loaded()).toEqual([]);
  });

  it('a truncated key file is keymanager_corrupt before the TPM is asked', async () => {
    const dir = join(work, 'truncated');
    await (await open(dir)).generateKey('agent-svid-A');
    const bytes = await readFile(join(dir, KEY_FILE));
    await writeFile(join(dir, KEY_FILE), bytes.subarray(0, bytes.length - 5));
    await expect(open(dir)).rejects.toMatchObject({ code: 'keymanager_corrupt', message: expect.stringMatching(/checksum mismatch: the file is truncated or was altered/) });
  });

  it('a key file copied to this TPM after TPM2_Clear is keymanager_tpm_foreign, naming the directory', async () => {
    const dir = join(work, 'cleared');
    await (await open(dir)).generateKey('agent-svid-A');
    const cleared = await Swtpm.start();
    try {
      await cleared.tool('tpm2_clear', ['-c', 'p']);
      await expect(open(dir, cleared)).rejects.toMatchObject({
        code: 'keymanager_tpm_foreign',
        message: `keymanager(tpm): the keys in ${dir} were sealed by another TPM, or this TPM was cleared since (its storage root key differs); they cannot be unsealed here. Remove ${join(dir, KEY_FILE)} (and the agent's data_dir state) to attest again as a new agent`,
      });
      expect(await cleared.loaded()).toEqual([]);
    } finally {
      await cleared.stop();
    }
  });

  it('a key file copied to another provisioned TPM is keymanager_tpm_foreign, and its blobs do not load there either', async () => {
    const dir = join(work, 'copied');
    await (await open(dir)).generateKey('agent-svid-A');
    const cache = join(work, 'other-swtpm-cache');
    other = await Swtpm.start({ cache });
    expect(other.template).not.toBe(tpm.template);
    await expect(open(dir, other)).rejects.toMatchObject({ code: 'keymanager_tpm_foreign' });
    expect(await other.loaded()).toEqual([]);
    // Without the SRK check, the blob itself is refused: it is wrapped by the first TPM's seed.
    const f = decodeKeyFile(await readFile(join(dir, KEY_FILE)), 'x');
    await writeFile(join(work, 'pub'), Buffer.concat([Buffer.from([0, f.keys[0]!.public.length]), f.keys[0]!.public]));
    await writeFile(join(work, 'priv'), Buffer.concat([Buffer.from([0, f.keys[0]!.private.length]), f.keys[0]!.private]));
    await other.tool('tpm2_createprimary', ['-Q', '-C', 'o', '-g', 'sha256', '-G', 'ecc256:null:aes128cfb', '-a', 'restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda', '-c', 'srk.ctx'], work);
    await other.tool('tpm2_flushcontext', ['-t']);
    await expect(other.tool('tpm2_load', ['-Q', '-C', 'srk.ctx', '-u', 'pub', '-r', 'priv', '-c', 'obj.ctx'], work)).rejects.toThrow();
    await other.tool('tpm2_flushcontext', ['-t']);
    // The same tools on the first TPM load and unseal it: the test above is not failing for another reason.
    await tpm.tool('tpm2_createprimary', ['-Q', '-C', 'o', '-g', 'sha256', '-G', 'ecc256:null:aes128cfb', '-a', 'restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda', '-c', 'srk.ctx'], work);
    await tpm.tool('tpm2_flushcontext', ['-t']);
    await tpm.tool('tpm2_load', ['-Q', '-C', 'srk.ctx', '-u', 'pub', '-r', 'priv', '-c', 'obj.ctx'], work);
    await tpm.tool('tpm2_flushcontext', ['-t']);
    expect((await tpm.tool('tpm2_unseal', ['-c', 'obj.ctx'], work)).length).toBe(32);
    await tpm.tool('tpm2_flushcontext', ['-t']);
  });

  it('uses owner_hierarchy_password when the owner hierarchy has one, and a wrong one is keymanager_tpm_failed that says so', async () => {
    const owned = await Swtpm.start();
    try {
      await owned.tool('tpm2_changeauth', ['-c', 'o', 'owner-secret']);
      const dir = join(work, 'owned');
      const km = await open(dir, owned, 'owner-secret');
      const a = await km.generateKey('agent-svid-A');
      const again = await open(dir, owned, 'owner-secret');
      expect(hex((await again.getKeys())[0]!.publicKeySpki)).toBe(hex(a.publicKeySpki));
      await expect(open(dir, owned, 'wrong')).rejects.toMatchObject({ code: 'keymanager_tpm_failed', message: expect.stringMatching(/^keymanager\(tpm\): could not create the storage root key on .* with plugin_data owner_hierarchy_password: tpm: TPM2_CreatePrimary: owner hierarchy password is wrong/) });
      expect(await owned.loaded()).toEqual([]);
    } finally {
      await owned.stop();
    }
  });

  it('no TPM at tpm_device_path is keymanager_tpm_failed naming the path', async () => {
    const dir = join(work, 'absent');
    await chmod(work, 0o700);
    await expect(open(dir, { socket: join(work, 'no-such.sock') } as Swtpm)).rejects.toMatchObject({ code: 'keymanager_tpm_failed', message: expect.stringContaining(`keymanager(tpm): could not open ${join(work, 'no-such.sock')}`) });
  });
});
