/**
 * TPM responses: truncated, oversized and malformed ones give a TpmError, never a crash or a hang.
 * Seeds are real responses recorded from swtpm (test/fixtures/tpm/responses.json) for the very
 * commands built here; the cases cut, extend, flip and resize them, or are noise. A socket peer
 * that sends such bytes, then hangs up or goes silent, must end in a TpmError within the timeout.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAttest } from '../../../src/tpm/attest.js';
import { handlesCommand } from '../../../src/tpm/commands/capability.js';
import { certifyCommand } from '../../../src/tpm/commands/certify.js';
import { activateCredentialCommand } from '../../../src/tpm/commands/credential.js';
import { flushContextCommand } from '../../../src/tpm/commands/flush.js';
import { nvReadCommand, nvReadPublicCommand } from '../../../src/tpm/commands/nv.js';
import { createCommand, createPrimaryCommand, loadCommand, readPublicCommand } from '../../../src/tpm/commands/objects.js';
import { policySecretCommand, startAuthSessionCommand } from '../../../src/tpm/commands/sessions.js';
import { hashCommand, signCommand } from '../../../src/tpm/commands/sign.js';
import { unsealCommand } from '../../../src/tpm/commands/unseal.js';
import { ALG, EK_CERT_NV_INDEX_RSA, HANDLE_RANGE, RH } from '../../../src/tpm/constants.js';
import { TpmError } from '../../../src/tpm/errors.js';
import { commandError } from '../../../src/tpm/explain.js';
import { parsePublic } from '../../../src/tpm/public-area.js';
import { decodeRC } from '../../../src/tpm/rc.js';
import { akTemplateRSA, srkTemplateHighRSA } from '../../../src/tpm/templates.js';
import { TpmClient } from '../../../src/tpm/client.js';
import { decodeResponse, type Command } from '../../../src/tpm/wire.js';
import { fc, fuzz, onlyTypedErrors, onlyTypedErrorsWithin } from './fuzz.js';

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/tpm/responses.json');
const RECORDED = (JSON.parse(readFileSync(FIXTURE, 'utf8')) as { responses: Record<string, string> }).responses;

/** The commands, with the arguments the fixture was recorded with (sessions and handles matter). */
const COMMANDS: Record<string, Command<unknown>> = {
  CreatePrimary: createPrimaryCommand({ hierarchy: RH.OWNER, template: srkTemplateHighRSA() }),
  ReadPublic: readPublicCommand(0x80000000),
  Create: createCommand({ parent: 0x80000000, template: akTemplateRSA(), userAuth: 'ak' }),
  Load: loadCommand({ parent: 0x80000000, private: Buffer.alloc(8), public: Buffer.alloc(8) }),
  FlushContext: flushContextCommand(0x80000000),
  Certify: certifyCommand({ object: 0x80000002, signer: 0x80000001 }),
  Hash: hashCommand(Buffer.from('nonce'), ALG.SHA256, RH.PLATFORM),
  Sign: signCommand({ key: 0x80000002, digest: Buffer.alloc(32) }),
  NV_ReadPublic: nvReadPublicCommand(EK_CERT_NV_INDEX_RSA),
  NV_Read: nvReadCommand({ index: EK_CERT_NV_INDEX_RSA, size: 56, offset: 960 }),
  GetCapability: handlesCommand(HANDLE_RANGE.TRANSIENT),
  StartAuthSession: startAuthSessionCommand(),
  PolicySecret: policySecretCommand({ authHandle: RH.ENDORSEMENT, session: 0x03000000 }),
  Unseal: unsealCommand(0x80000002),
  // Not recorded (needs an EK activation); fuzzed from the others' bytes and noise.
  ActivateCredential: activateCredentialCommand({ activate: 0x80000001, key: 0x80000002, credentialBlob: Buffer.alloc(4), secret: Buffer.alloc(4) }),
};
const NAMES = Object.keys(COMMANDS);
const seeds = Object.values(RECORDED).map((h) => Buffer.from(h, 'hex'));

function parse(name: string, bytes: Buffer): unknown {
  const cmd = COMMANDS[name]!;
  const d = decodeResponse(bytes, cmd.spec);
  return d.ok ? cmd.parse(d.response) : commandError(cmd.spec, d.rc);
}

/** A recorded response, cut, extended, flipped, resized, or plain noise. */
const response: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)),
  fc.tuple(fc.constantFrom(...seeds), fc.nat()).map(([s, n]) => s.subarray(0, n % (s.length + 1))),
  fc.tuple(fc.constantFrom(...seeds), fc.uint8Array({ minLength: 1, maxLength: 64 })).map(([s, extra]) => Buffer.concat([s, extra])),
  fc.tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 })).map(([s, flips]) => {
    const b = Buffer.from(s);
    for (const [at, v] of flips) b[at % b.length] = v;
    return b;
  }),
  fc.tuple(fc.constantFrom(...seeds), fc.nat()).map(([s, size]) => {
    const b = Buffer.from(s);
    b.writeUInt32BE(size >>> 0, 2);
    return b;
  }),
  // A well-formed header of the right size around a random body.
  fc.tuple(fc.constantFrom(0x8001, 0x8002), fc.uint8Array({ maxLength: 300 })).map(([tag, body]) => {
    const b = Buffer.concat([Buffer.alloc(10), body]);
    b.writeUInt16BE(tag, 0);
    b.writeUInt32BE(b.length, 2);
    return b;
  }),
);

describe('fuzz: TPM responses', () => {
  it('the recorded responses parse: the table matches the fixture', () => {
    for (const [name, hex] of Object.entries(RECORDED)) expect(() => parse(name, Buffer.from(hex, 'hex')), name).not.toThrow();
  });

  it('every command: any response bytes give a result or a TpmError', () => {
    fuzz(
      fc.property(fc.constantFrom(...NAMES), response, (name, bytes) => void onlyTypedErrors(() => parse(name, bytes), TpmError)),
      3000,
    );
  });

  it('a public area or an attestation in any bytes: parsed or a TpmError', () => {
    const pub = (parse('ReadPublic', Buffer.from(RECORDED['ReadPublic']!, 'hex')) as { public: { bytes: Buffer } }).public.bytes;
    const attest = (parse('Certify', Buffer.from(RECORDED['Certify']!, 'hex')) as { attest: Buffer }).attest;
    const mutated = (seed: Buffer): fc.Arbitrary<Buffer> =>
      fc.oneof(
        fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)),
        fc.nat().map((n) => seed.subarray(0, n % (seed.length + 1))),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }).map((flips) => {
          const b = Buffer.from(seed);
          for (const [at, v] of flips) b[at % b.length] = v;
          return b;
        }),
      );
    fuzz(fc.property(mutated(pub), (b) => void onlyTypedErrors(() => parsePublic(b), TpmError)), 2000);
    fuzz(fc.property(mutated(attest), (b) => void onlyTypedErrors(() => parseAttest(b), TpmError)), 2000);
  });

  it('any 32-bit response code decodes to a name and an error, without throwing', () => {
    fuzz(
      fc.property(fc.integer({ min: 1, max: 0xffff_ffff }), fc.constantFrom(...NAMES), (rc, name) => {
        expect(decodeRC(rc).name.length).toBeGreaterThan(0);
        expect(commandError(COMMANDS[name]!.spec, rc)).toBeInstanceOf(TpmError);
      }),
      3000,
    );
  });
});

describe('fuzz: a socket peer sending such bytes', () => {
  let dir: string;
  let server: Server;
  let next: { bytes: Buffer; pieces: number; then: 'close' | 'hang' } = { bytes: Buffer.alloc(0), pieces: 1, then: 'close' };
  let path: string;
  const open = new Set<Socket>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tpm-fuzz-'));
    path = join(dir, 'peer.sock');
    server = createServer((sock) => {
      open.add(sock);
      sock.on('close', () => open.delete(sock));
      sock.on('error', () => undefined);
      sock.once('data', () => {
        const { bytes, pieces, then } = next;
        const step = Math.max(1, Math.ceil(bytes.length / pieces));
        for (let i = 0; i < bytes.length; i += step) sock.write(bytes.subarray(i, i + step));
        if (then === 'close') sock.end();
      });
    });
    await new Promise<void>((r) => server.listen(path, r));
  });
  afterAll(async () => {
    for (const sock of open) sock.destroy();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('ends in a result or a TpmError within the client timeout, whether it hangs up or goes silent', async () => {
    const client = new TpmClient(await import('../../../src/tpm/transport/open.js').then((m) => m.openTransport(path)), { timeoutMs: 150, attempts: 2, retryDelayMs: 1 });
    await fuzz(
      fc.asyncProperty(fc.constantFrom(...NAMES), response, fc.integer({ min: 1, max: 5 }), fc.constantFrom('close' as const, 'hang' as const), async (name, bytes, pieces, then) => {
        next = { bytes, pieces, then };
        await onlyTypedErrorsWithin(1_500, () => client.run(COMMANDS[name]!), TpmError);
      }),
      100,
    );
  });
});
