/**
 * The embedded authority across wall-clock jumps, driven by the fake clock (whose
 * `jump` moves the wall clock while timers, like Node's, keep monotonic time): a host
 * that resumes a day later, past the CA's expiry, and a clock set back before the CA's
 * notBefore. The real daemon under libfaketime is test/integration/time-jumps.test.ts.
 */
import { x509 } from '../../../src/svid/x509-lib.js';
import { afterEach, describe, expect, it } from 'vitest';
import { WALL_CHECK_MS } from '../../../src/clock.js';
import { EmbeddedAuthority } from '../../../src/authority/embedded/index.js';
import { rotationStep } from '../../../src/authority/embedded/ca.js';
import { nullLogger } from '../../../src/telemetry/logger.js';
import { FakeClock } from './fake-clock.js';
import { config, entry, HOUR, tempDir, workloadCSR } from './helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

async function started(clock: FakeClock): Promise<EmbeddedAuthority> {
  const d = await tempDir();
  cleanups.push(d.remove);
  const a = new EmbeddedAuthority({ trustDomain: 'example.org', dataDir: d.path, config: config(), clock, log: nullLogger });
  await a.start(new AbortController().signal);
  cleanups.push(() => a.close());
  return a;
}

const cas = (a: EmbeddedAuthority): x509.X509Certificate[] => a.snapshot().bundle.x509Authorities.map((der) => new x509.X509Certificate(Buffer.from(der)));
const validAt = (c: { notBefore: Date; notAfter: Date }, now: number): boolean => c.notBefore.getTime() <= now && now <= c.notAfter.getTime();

async function signedLeaf(a: EmbeddedAuthority): Promise<x509.X509Certificate> {
  const svid = await a.signX509SVID(entry(), (await workloadCSR()).der);
  return new x509.X509Certificate(Buffer.from(svid.chain[0]!));
}

/** The bundle CA that signed `leaf` (by AKI/SKI). */
function issuerOf(a: EmbeddedAuthority, leaf: x509.X509Certificate): x509.X509Certificate | undefined {
  const aki = leaf.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
  return cas(a).find((c) => c.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId === aki);
}

describe('rotation schedule and the wall clock', () => {
  it('replaces a generation that is not valid yet, and discards a successor made in the future', () => {
    const g = { notBefore: 1_000, notAfter: 7_000 };
    expect(rotationStep(g, undefined, 999)).toBe('create-active');
    expect(rotationStep(g, { notBefore: 4_000, notAfter: 10_000 }, 999)).toBe('discard-next');
    expect(rotationStep(g, { notBefore: 4_000, notAfter: 10_000 }, 3_999)).toBe('discard-next');
    expect(rotationStep(g, { notBefore: 4_000, notAfter: 10_000 }, 7_000)).toBe('activate');
  });
});

describe('embedded authority across wall-clock jumps', () => {
  it('signs with a valid CA at once after the wall clock jumped a day ahead, past the CA expiry', async () => {
    const clock = new FakeClock();
    const a = await started(clock);
    clock.jump(25 * HOUR);
    const leaf = await signedLeaf(a);
    const ca = issuerOf(a, leaf);
    expect(ca).toBeDefined();
    expect(validAt(ca!, clock.now())).toBe(true);
    expect(validAt(leaf, clock.now())).toBe(true);
  });

  it('publishes a CA valid after a forward jump within seconds, with no signing request to prompt it', async () => {
    const clock = new FakeClock();
    const a = await started(clock);
    const changes: number[] = [];
    a.onChange((s) => changes.push(s.bundle.sequenceNumber));
    clock.jump(25 * HOUR);
    clock.advance(WALL_CHECK_MS);
    await a.idle();
    expect(changes.length).toBeGreaterThan(0);
    expect(cas(a).some((c) => validAt(c, clock.now()))).toBe(true);
    expect(cas(a).every((c) => c.notAfter.getTime() > clock.now())).toBe(true);
  });

  it('signs SVIDs that verify now after the wall clock jumped back a day, before the CA notBefore', async () => {
    const clock = new FakeClock();
    const a = await started(clock);
    const [first] = cas(a);
    clock.jump(-24 * HOUR);
    const leaf = await signedLeaf(a);
    expect(validAt(leaf, clock.now())).toBe(true);
    const ca = issuerOf(a, leaf);
    expect(ca?.serialNumber).not.toBe(first?.serialNumber);
    expect(validAt(ca!, clock.now())).toBe(true);
  });

  it('replaces a not-yet-valid CA within seconds of a backward jump, with no signing request to prompt it', async () => {
    const clock = new FakeClock();
    const a = await started(clock);
    clock.advance(13 * HOUR); // the successor is prepared and published
    await a.idle();
    expect(cas(a)).toHaveLength(2);
    clock.jump(-24 * HOUR);
    clock.advance(WALL_CHECK_MS);
    await a.idle();
    expect(cas(a).some((c) => validAt(c, clock.now()))).toBe(true);
    const signer = issuerOf(a, await signedLeaf(a));
    expect(validAt(signer!, clock.now())).toBe(true);
  });
});
