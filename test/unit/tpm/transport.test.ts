/**
 * Finding and talking to the TPM: auto-detection over fixture /dev directories, what the client
 * does with a path that is no TPM (real character devices /dev/null, /dev/zero, /dev/full stand in
 * for a device that misbehaves), a socket peer that hangs up or never answers, a response that
 * arrives in pieces, and TPM_RC_RETRY (a FAKE answer from a proxy in front of swtpm).
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { autodetectTpmPath, createPrimary, listHandles, HANDLE_RANGE, RH, srkTemplateHighRSA, TpmClient, TpmError } from '../../../src/tpm/index.js';
import { requireTool } from '../../helpers/require-tool.js';
import { rcResponse, TpmProxy } from '../../helpers/tpm/proxy.js';
import { Swtpm, SWTPM_WHY, swtpmFound } from '../../helpers/tpm/swtpm.js';

async function failure(p: Promise<unknown>): Promise<TpmError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(TpmError);
  return err as TpmError;
}

describe('finding the TPM as spire-agent does', () => {
  const root = mkdtempSync(join(tmpdir(), 'tpm-dev-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  function dev(...names: string[]): string {
    const d = mkdtempSync(join(root, 'dev-'));
    for (const n of names) writeFileSync(join(d, n), '');
    return d;
  }

  it.each([
    [['tpm0'], 'tpm0'],
    [['tpm0', 'tpmrm0', 'tty0'], 'tpmrm0'],
    [['tpmrm0', 'tpm0', 'tpm1'], 'tpmrm0'],
    [['tpm12', 'vtpmx'], 'tpm12'],
  ])('in %j it picks %s', async (names, expected) => {
    const d = dev(...names);
    expect(await autodetectTpmPath(d)).toBe(join(d, expected));
  });

  it.each([
    [['tpmrm0', 'tpmrm1'], 'tpm_device_ambiguous', /tpmrm0, tpmrm1.*set tpm_device_path/],
    [['tpm0', 'tpm1'], 'tpm_device_ambiguous', /tpm0, tpm1/],
    [['vtpmx', 'tty0'], 'tpm_device_not_found', /no TPM found/],
  ])('in %j it refuses to guess: %s', async (names, code, message) => {
    const err = await failure(autodetectTpmPath(dev(...names)));
    expect(err.code).toBe(code);
    expect(err.message).toMatch(message);
  });

  it('a configured path that does not exist, or is a plain file, is refused', async () => {
    expect((await failure(TpmClient.open(join(root, 'missing')))).code).toBe('tpm_device_not_found');
    const file = join(root, 'regular');
    writeFileSync(file, '');
    const err = await failure(TpmClient.open(file));
    expect(err).toMatchObject({ code: 'tpm_device_unsupported' });
    expect(err.message).toMatch(/neither a character device nor a Unix socket/);
    mkdirSync(join(root, 'a-dir'));
    expect((await failure(TpmClient.open(join(root, 'a-dir')))).code).toBe('tpm_device_unsupported');
  });

  it.each([
    ['/dev/null', 'tpm_io', /returned no response/],
    ['/dev/zero', 'tpm_malformed_response', /responseSize 0/],
    ['/dev/full', 'tpm_io', /no space left/i],
  ])('a character device that is no TPM (%s) gives %s', async (path, code, message) => {
    const err = await failure(TpmClient.open(path));
    expect(err.code).toBe(code);
    expect(err.message).toMatch(message);
  });
});

describe('a socket peer that is no TPM', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tpm-peer-'));
  const servers: Server[] = [];
  afterAll(async () => {
    for (const s of servers) await new Promise((r) => s.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  async function peer(name: string, onCommand: (reply: (b: Buffer | null) => void) => void): Promise<string> {
    const path = join(dir, name);
    const server = createServer((sock) => {
      sock.on('error', () => undefined);
      sock.once('data', () => onCommand((b) => (b === null ? sock.destroy() : sock.write(b))));
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(path, r));
    return path;
  }

  it('hangs up without answering: tpm_io', async () => {
    const err = await failure(TpmClient.open(await peer('hangup', (reply) => reply(null))));
    expect(err).toMatchObject({ code: 'tpm_io' });
    expect(err.message).toMatch(/closed the connection without answering TPM2_GetCapability/);
  });

  it('sends half a response and hangs up: tpm_malformed_response', async () => {
    const path = await peer('half', (reply) => {
      reply(rcResponse(0).subarray(0, 6));
      reply(null);
    });
    expect((await failure(TpmClient.open(path))).code).toBe('tpm_malformed_response');
  });

  it('never answers: tpm_timeout after the client timeout, not a hang', async () => {
    const err = await failure(TpmClient.open(await peer('silent', () => undefined), { timeoutMs: 300 }));
    expect(err).toMatchObject({ code: 'tpm_timeout' });
    expect(err.message).toMatch(/no answer .* within 300 ms/);
  });

  it('a TPM 1.2 (it answers with a 1.2 tag and code) is not taken for a TPM 2.0', async () => {
    const v12 = rcResponse(0x1e); // TPM_BADTAG
    v12.writeUInt16BE(0x00c4, 0);
    const err = await failure(TpmClient.open(await peer('tpm12', (reply) => reply(v12))));
    expect(err).toMatchObject({ code: 'tpm_device_unsupported' });
    expect(err.message).toMatch(/does not answer as a TPM 2.0/);
  });

  it('a TPM 2.0 that was never started says so, and how to start it', async () => {
    const err = await failure(TpmClient.open(await peer('unstarted', (reply) => reply(rcResponse(0x100)))));
    expect(err).toMatchObject({ code: 'tpm_command_failed', rc: { name: 'TPM_RC_INITIALIZE' } });
    expect(err.message).toMatch(/TPM2_Startup/);
  });

  it('announces a response larger than any TPM sends: refused at the header', async () => {
    const big = rcResponse(0);
    big.writeUInt32BE(1 << 20, 2);
    const err = await failure(TpmClient.open(await peer('big', (reply) => reply(big))));
    expect(err).toMatchObject({ code: 'tpm_malformed_response' });
    expect(err.message).toMatch(/over the 8192-byte limit/);
  });
});

const skip = requireTool('swtpm', swtpmFound(), SWTPM_WHY);

describe.skipIf(skip)('the socket transport between the client and swtpm', () => {
  let tpm: Swtpm;
  let proxy: TpmProxy;

  beforeAll(async () => {
    tpm = await Swtpm.start();
    proxy = await TpmProxy.start(tpm.socket);
  });
  afterAll(async () => {
    await proxy?.close();
    await tpm?.stop();
  });

  it('assembles a response that arrives a few bytes at a time', async () => {
    proxy.pieceSize = 7;
    const client = await TpmClient.open(proxy.path);
    try {
      const srk = await createPrimary(client, { hierarchy: RH.OWNER, template: srkTemplateHighRSA() });
      expect(await listHandles(client, HANDLE_RANGE.TRANSIENT)).toEqual([srk.handle]);
    } finally {
      await client.close();
      proxy.pieceSize = 0;
    }
  });

  it('sends a command again when the TPM answers TPM_RC_RETRY (FAKE answers from the proxy), then gets the real one', async () => {
    const client = await TpmClient.open(proxy.path, { retryDelayMs: 1 });
    const before = proxy.commands.length;
    proxy.answer = (_, i) => (i < before + 3 ? rcResponse(0x922) : 'forward');
    try {
      await createPrimary(client, { hierarchy: RH.OWNER, template: srkTemplateHighRSA() });
      const sent = proxy.commands.slice(before);
      expect(sent).toHaveLength(4);
      expect(new Set(sent.map((c) => c.toString('hex'))).size, 'the same command each time').toBe(1);
    } finally {
      proxy.answer = () => 'forward';
      await client.close();
    }
    expect(await tpm.loaded()).toEqual([]);
  });

  it('gives up after its attempts and reports TPM_RC_RETRY with the command', async () => {
    const client = await TpmClient.open(proxy.path, { retryDelayMs: 1, attempts: 3 });
    proxy.answer = () => rcResponse(0x922);
    try {
      const err = await failure(createPrimary(client, { hierarchy: RH.OWNER, template: srkTemplateHighRSA() }));
      expect(err).toMatchObject({ code: 'tpm_command_failed', command: 'TPM2_CreatePrimary', rc: { name: 'TPM_RC_RETRY' } });
    } finally {
      proxy.answer = () => 'forward';
      await client.close();
    }
  });
});
