import { x509 } from '../../../src/svid/x509-lib.js';
import { describe, it, expect, afterEach } from 'vitest';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { EmbeddedAuthority } from '../../../src/authority/embedded/index.js';
import { activateAt, prepareAt, rotationStep } from '../../../src/authority/embedded/ca.js';
import { nullLogger } from '../../../src/telemetry/logger.js';
import { FakeClock } from './fake-clock.js';
import { config, crypto, entry, HOUR, tempDir, workloadCSR } from './helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

async function started(dataDir: string, clock: FakeClock, over = {}): Promise<EmbeddedAuthority> {
  const a = new EmbeddedAuthority({ trustDomain: 'example.org', dataDir, config: config(over), clock, log: nullLogger });
  await a.start(new AbortController().signal);
  cleanups.push(() => a.close());
  return a;
}

async function setup(): Promise<string> {
  const d = await tempDir();
  cleanups.push(d.remove);
  return d.path;
}

function certs(a: EmbeddedAuthority): x509.X509Certificate[] {
  return a.snapshot().bundle.x509Authorities.map((der) => new x509.X509Certificate(Buffer.from(der)));
}

describe('embedded CA persistence', () => {
  it('writes the CA into <data_dir>/embedded-ca with 0600 files in a 0700 directory', async () => {
    const dir = await setup();
    await started(dir, new FakeClock());
    const caDir = join(dir, 'embedded-ca');
    expect((await stat(caDir)).mode & 0o777).toBe(0o700);
    const files = await readdir(caDir);
    expect(files).toContain('manifest.json');
    expect(files.filter((f) => f.endsWith('.ca.key.pem'))).toHaveLength(1);
    for (const f of files) expect((await stat(join(caDir, f))).mode & 0o777, f).toBe(0o600);
    expect(files.some((f) => f.endsWith('.tmp'))).toBe(false);
  });

  it('reuses the same CA and JWT key after a restart with the same data_dir', async () => {
    const dir = await setup();
    const clock = new FakeClock();
    const first = await started(dir, clock);
    const before = first.snapshot().bundle;
    await first.close();
    const second = await started(dir, clock);
    const after = second.snapshot().bundle;
    expect(after.x509Authorities.map((d) => Buffer.from(d).toString('hex'))).toEqual(before.x509Authorities.map((d) => Buffer.from(d).toString('hex')));
    expect(after.jwtAuthorities.map((k) => k.keyId)).toEqual(before.jwtAuthorities.map((k) => k.keyId));
  });

  it('refuses a data_dir whose CA belongs to another trust domain', async () => {
    const dir = await setup();
    const clock = new FakeClock();
    await (await started(dir, clock)).close();
    const other = new EmbeddedAuthority({ trustDomain: 'other.org', dataDir: dir, config: config(), clock, log: nullLogger });
    await expect(other.start(new AbortController().signal)).rejects.toMatchObject({ code: 'ca_trust_domain' });
  });

  it('issues a self-signed CA with the SPIFFE CA profile and the configured subject', async () => {
    const dir = await setup();
    const a = await started(dir, new FakeClock(), { caKeyType: 'ec-p384' });
    const [ca] = certs(a);
    expect(ca).toBeDefined();
    if (!ca) return;
    expect(ca.subject).toBe('C=US, O=SPIFFE');
    expect(ca.issuer).toBe(ca.subject);
    expect(await ca.verify({ signatureOnly: true }, crypto)).toBe(true);
    const bc = ca.getExtension(x509.BasicConstraintsExtension);
    expect(bc?.ca).toBe(true);
    expect(bc?.critical).toBe(true);
    const ku = ca.getExtension(x509.KeyUsagesExtension);
    expect(ku?.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    expect(ku?.critical).toBe(true);
    expect(ca.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId).toMatch(/^[0-9a-f]+$/);
    expect(ca.getExtension(x509.SubjectAlternativeNameExtension)?.names.items.map((n) => n.value)).toEqual(['spiffe://example.org']);
    expect((ca.publicKey.algorithm as { namedCurve?: string }).namedCurve).toBe('P-384');
  });

  it.each(['rsa-2048', 'ec-p256'] as const)('supports %s CA keys and reloads them', async (caKeyType) => {
    const dir = await setup();
    const clock = new FakeClock();
    await (await started(dir, clock, { caKeyType, jwtKeyType: caKeyType })).close();
    const again = await started(dir, clock, { caKeyType, jwtKeyType: caKeyType });
    expect(again.snapshot().bundle.x509Authorities).toHaveLength(1);
  });
});

describe('embedded CA rotation', () => {
  it('decides prepare at 1/2 and activate at 2/3 of the lifetime', () => {
    const g = { notBefore: 0, notAfter: 600 };
    expect(prepareAt(g)).toBe(300);
    expect(activateAt(g)).toBe(400);
    expect(rotationStep(g, undefined, 299)).toBe('none');
    expect(rotationStep(g, undefined, 300)).toBe('prepare');
    expect(rotationStep(g, { notBefore: 300, notAfter: 900 }, 350)).toBe('none');
    expect(rotationStep(g, { notBefore: 300, notAfter: 900 }, 400)).toBe('activate');
    expect(rotationStep(g, undefined, 400)).toBe('prepare');
    expect(rotationStep(g, undefined, 600)).toBe('create-active');
    expect(rotationStep(undefined, undefined, 0)).toBe('create-active');
  });

  it('prepares the next CA at half-life, activates it at 2/3, and drops the old one at its expiry', async () => {
    const dir = await setup();
    const clock = new FakeClock();
    const a = await started(dir, clock);
    const changes: number[] = [];
    a.onChange((s) => changes.push(s.bundle.sequenceNumber));
    const [first] = certs(a);
    const firstJwt = a.snapshot().bundle.jwtAuthorities[0]?.keyId;
    const seq0 = a.snapshot().bundle.sequenceNumber;

    clock.advance(11 * HOUR);
    await a.idle();
    expect(certs(a)).toHaveLength(1);

    clock.advance(1 * HOUR + 10_000); // past 1/2
    await a.idle();
    const during = certs(a);
    expect(during).toHaveLength(2);
    expect(a.snapshot().bundle.jwtAuthorities).toHaveLength(2);
    expect(a.snapshot().bundle.sequenceNumber).toBeGreaterThan(seq0);
    expect(changes.length).toBeGreaterThan(0);
    // Still signing with the first CA until 2/3.
    expect(await issuerSerial(a)).toBe(first?.serialNumber);

    clock.advance(4 * HOUR); // past 2/3 (16h)
    await a.idle();
    const second = during[1];
    expect(await issuerSerial(a)).toBe(second?.serialNumber);
    expect(certs(a).map((c) => c.serialNumber)).toContain(first?.serialNumber);
    expect(a.snapshot().bundle.jwtAuthorities.map((k) => k.keyId)).toContain(firstJwt);

    clock.advance(8 * HOUR + 20_000); // past the first CA's notAfter (24h)
    await a.idle();
    const serials = certs(a).map((c) => c.serialNumber);
    expect(serials).not.toContain(first?.serialNumber);
    expect(serials).toContain(second?.serialNumber);
    expect(a.snapshot().bundle.jwtAuthorities.map((k) => k.keyId)).not.toContain(firstJwt);
  });

  it('activates the next CA on start when the agent was down past 2/3 of the lifetime', async () => {
    const dir = await setup();
    const clock = new FakeClock();
    const a = await started(dir, clock);
    const [first] = certs(a);
    await a.close();
    clock.advance(17 * HOUR);
    const b = await started(dir, clock);
    const now = certs(b);
    expect(now).toHaveLength(2);
    expect(await issuerSerial(b)).not.toBe(first?.serialNumber);
    expect(now.map((c) => c.serialNumber)).toContain(first?.serialNumber);
  });

  it('cancels every timer on close', async () => {
    const dir = await setup();
    const clock = new FakeClock();
    const a = await started(dir, clock);
    expect(clock.pendingTimers).toBeGreaterThan(0);
    await a.close();
    expect(clock.pendingTimers).toBe(0);
  });
});

/** Serial of the CA signing right now: sign an X.509-SVID and match its AKI to a bundle CA's SKI. */
async function issuerSerial(a: EmbeddedAuthority): Promise<string | undefined> {
  const csr = await workloadCSR();
  const svid = await a.signX509SVID(entry(), csr.der);
  const leaf = new x509.X509Certificate(Buffer.from(svid.chain[0] ?? new Uint8Array()));
  const aki = leaf.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
  return certs(a).find((c) => c.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId === aki)?.serialNumber;
}
