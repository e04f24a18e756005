/**
 * The SDK's TLS peer checks (src/sdk/tls) on hostile certificates: what a peer presents is outside
 * input. Certificates come from the test CA (real signatures, odd profiles), then are cut, flipped,
 * reordered and duplicated. verifyPeerChain, the authorizers and the hooks node:tls calls must only
 * refuse with typed errors, stay fast, and never accept what a plain independent check rejects.
 */
import { EventEmitter } from 'node:events';
import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, Server, TLSSocket } from 'node:tls';
import { beforeAll, describe, expect, it } from 'vitest';
import { BundleError, BundleSet, SpiffeId, SpiffeIdError, TrustDomain, X509Bundle, X509SVIDError, parseX509SVID, type X509SVID } from '../../../src/svid/index.js';
import { x509 } from '../../../src/svid/x509-lib.js';
import type { X509Context } from '../../../src/sdk/index.js';
import { TLSAuthorizationError } from '../../../src/sdk/errors.js';
import {
  authorizeAny,
  authorizeID,
  authorizeMemberOf,
  authorizeOneOf,
  hookMTLSServer,
  mtlsClientOptions,
  peerChain,
  verifyPeerChain,
  type Authorizer,
  type X509SourceLike,
} from '../../../src/sdk/tls/index.js';
import { TestCA } from '../../helpers/test-ca.js';
import { fc, fuzz, onlyTypedErrors } from './fuzz.js';

const KU = x509.KeyUsageFlags;
const HOUR = 3600_000;
/** What verifyPeerChain may throw: its own typed error, nothing else. */
const VERIFY_ERRORS = [X509SVIDError] as const;

/** Flips bits, truncates, drops, inserts or appends bytes. */
function mutate(bytes: Uint8Array): fc.Arbitrary<Uint8Array> {
  const edit = fc.tuple(fc.nat(Math.max(0, bytes.length - 1)), fc.integer({ min: 0, max: 255 }), fc.constantFrom('flip', 'set', 'drop', 'insert', 'truncate', 'append'));
  return fc.array(edit, { minLength: 1, maxLength: 4 }).map((edits) => {
    let b = Array.from(bytes);
    for (const [at, v, op] of edits) {
      if (op === 'flip') b[at % b.length] = (b[at % b.length] ?? 0) ^ (1 << (v & 7));
      else if (op === 'set') b[at] = v;
      else if (op === 'drop') b.splice(at, 1);
      else if (op === 'insert') b.splice(at, 0, v);
      else if (op === 'truncate') b = b.slice(0, at);
      else b.push(v);
    }
    return new Uint8Array(b);
  });
}

/** URI SANs of a certificate, read with @peculiar/x509 directly (the oracle does not use src/svid). */
function uriSans(der: Uint8Array): string[] {
  const san = new x509.X509Certificate(new Uint8Array(der)).getExtension(x509.SubjectAlternativeNameExtension);
  return san ? san.names.items.filter((n) => n.type === 'url').map((n) => n.value) : [];
}

const hex = (d: Uint8Array): string => Buffer.from(d).toString('hex');

/**
 * The straightforward check an accepted result must pass: the leaf is what was presented and has
 * exactly one spiffe:// URI SAN naming the returned ID, is no CA and is valid now; each certificate
 * is signed by the next and is valid now; intermediates are CAs; the last one is an authority of
 * the bundle of the ID's trust domain, and everything before it was presented, in order.
 */
function expectSound(presented: readonly Uint8Array[], bundles: BundleSet<X509Bundle>, now: Date, got: { id: SpiffeId; chain: Uint8Array[] }): void {
  const chain = got.chain;
  expect(chain.length).toBeGreaterThanOrEqual(2);
  expect(hex(chain[0]!)).toBe(hex(presented[0]!));
  const uris = uriSans(chain[0]!);
  expect(uris).toHaveLength(1);
  expect(uris[0]!.startsWith('spiffe://')).toBe(true);
  expect(got.id.toString()).toBe(uris[0]);
  const certs = chain.map((d) => new X509Certificate(d));
  expect(certs[0]!.ca).toBe(false);
  for (const [i, c] of certs.entries()) {
    expect(now >= new Date(c.validFrom) && now <= new Date(c.validTo), `certificate ${i} (${c.validFrom} - ${c.validTo}) valid at ${now.toISOString()}`).toBe(true);
    if (i > 0) expect(c.ca, `certificate ${i} is a CA`).toBe(true);
    if (i + 1 < certs.length) expect(c.verify(certs[i + 1]!.publicKey), `certificate ${i} signed by ${i + 1}`).toBe(true);
  }
  const authorities = bundles.bundleFor(got.id.trustDomain)?.authorities() ?? [];
  expect(authorities.map(hex)).toContain(hex(chain[chain.length - 1]!));
  for (let i = 0; i < chain.length - 1; i++) expect(hex(chain[i]!)).toBe(hex(presented[i]!));
}

/** A source that holds a fixed context (no Workload API here: only the checks are fuzzed). */
class StaticSource implements X509SourceLike {
  constructor(
    readonly svid: X509SVID,
    readonly ctx: X509Context,
  ) {}
  getX509SVID(): X509SVID {
    return this.svid;
  }
  getX509Context(): X509Context {
    return this.ctx;
  }
  onUpdate(): () => void {
    return () => {};
  }
}

/** A DetailedPeerCertificate as node:tls links them; `links[i]` is the index of i's issuer (or -1). */
function linkedPeer(raws: readonly (Uint8Array | undefined)[], links: readonly number[]): DetailedPeerCertificate | Record<string, never> {
  if (raws.length === 0) return {};
  const nodes = raws.map((raw, i) => ({ raw: raw === undefined ? undefined : Buffer.from(raw), fingerprint256: raw === undefined ? `none-${i}` : hex(raw) })) as unknown as DetailedPeerCertificate[];
  nodes.forEach((n, i) => {
    const to = links[i] ?? -1;
    if (to >= 0 && to < nodes.length) (n as { issuerCertificate: DetailedPeerCertificate }).issuerCertificate = nodes[to]!;
  });
  return nodes[0]!;
}

interface Pool {
  ca: TestCA;
  other: TestCA;
  bundles: BundleSet<X509Bundle>;
  /** Certificates a peer might present: leaves of every kind, intermediates, roots. */
  certs: Uint8Array[];
  /** Chains the verifier must accept now (the fuzz must reach acceptance, or it tests nothing). */
  good: Uint8Array[][];
  svid: X509SVID;
}

let pool: Pool;

beforeAll(async () => {
  const ca = await TestCA.create('example.org');
  const other = await TestCA.create('other.test');
  const inter = await ca.createIntermediate();
  const inter2 = await inter.createIntermediate();
  const notCA = await ca.createIntermediate({ isCA: false });
  const noCertSign = await ca.createIntermediate({ keyUsages: KU.cRLSign });
  const expiredInter = await ca.createIntermediate({ notBefore: new Date(Date.now() - 3 * HOUR), notAfter: new Date(Date.now() - HOUR) });
  const expiredRoot = await TestCA.create('example.org', { notBefore: new Date(Date.now() - 3 * HOUR), notAfter: new Date(Date.now() - HOUR) });
  const leaf = (issuer: TestCA, id: string, opts: Parameters<TestCA['createX509SVID']>[1] = {}): Promise<Uint8Array[]> => issuer.createX509SVID(id, opts).then((s) => s.chain);
  const W = 'spiffe://example.org/w';
  const good = [await leaf(ca, W), await leaf(inter, 'spiffe://example.org/deep'), await leaf(inter2, 'spiffe://example.org/deeper'), await leaf(other, 'spiffe://other.test/o'), await leaf(ca, W, { keyType: 'rsa-2048' })];
  const bad = [
    await leaf(ca, W, { extraUris: ['spiffe://example.org/two'] }),
    await leaf(ca, W, { extraUris: ['https://example.org/x'] }),
    await leaf(ca, W, { uris: ['https://example.org/w'] }),
    await leaf(ca, W, { uris: ['spiffe://EXAMPLE.org/w'] }),
    await leaf(ca, W, { uris: ['spiffe://example.org/w/../x'] }),
    await leaf(ca, W, { uris: ['spiffe://example.org'] }),
    await leaf(ca, W, { uris: [], dnsNames: ['example.org'] }),
    await leaf(ca, W, { uris: Array.from({ length: 300 }, (_, i) => `spiffe://example.org/${i}`) }),
    await leaf(ca, W, { dnsNames: Array.from({ length: 2000 }, (_, i) => `h${i}.example.org`) }),
    await leaf(ca, W, { notBefore: new Date(Date.now() - 3 * HOUR), ttlMs: HOUR }),
    await leaf(ca, W, { notBefore: new Date(Date.now() + HOUR) }),
    await leaf(ca, W, { isCA: true, keyUsages: KU.digitalSignature }),
    await leaf(ca, W, { keyUsages: KU.digitalSignature | KU.keyCertSign }),
    await leaf(ca, W, { keyUsages: KU.digitalSignature | KU.cRLSign }),
    await leaf(ca, W, { keyUsages: KU.keyEncipherment }),
    await leaf(ca, W, { keyUsages: null }),
    await leaf(other, W),
    await leaf(notCA, W),
    await leaf(noCertSign, W),
    await leaf(expiredInter, W),
    await leaf(expiredRoot, W),
  ];
  const certs = [...good, ...bad].flat().concat([ca.der(), other.der(), expiredRoot.der()]);
  const unique = [...new Map(certs.map((c) => [hex(c), c])).values()];
  const s = await ca.createX509SVID('spiffe://example.org/self');
  pool = {
    ca,
    other,
    bundles: new BundleSet<X509Bundle>([ca.bundle(), other.bundle()]),
    certs: unique,
    good,
    svid: await parseX509SVID(s.chain, s.privateKeyPkcs8),
  };
}, 120_000);

/** A presented chain: pool certificates in any order, repeated, some of them mutated. */
function chainArb(): fc.Arbitrary<Uint8Array[]> {
  const cert = fc.nat(pool.certs.length - 1).map((i) => pool.certs[i]!);
  const maybeMutated = fc.oneof({ weight: 3, arbitrary: cert }, { weight: 1, arbitrary: cert.chain((c) => mutate(c)) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) });
  const goodChain = fc.nat(pool.good.length - 1).map((i) => pool.good[i]!);
  const reshaped = fc.tuple(goodChain, fc.boolean(), fc.nat(), fc.nat(3)).map(([c, withRoot, seed, op]) => {
    const out = withRoot ? [...c, c === pool.good[3] ? pool.other.der() : pool.ca.der()] : [...c];
    const i = seed % out.length;
    const j = (seed >> 4) % out.length;
    if (op === 0) [out[i], out[j]] = [out[j]!, out[i]!];
    else if (op === 1) out.splice(i, 0, out[i]!);
    else if (op === 2) out.splice(i, 1);
    return out;
  });
  return fc.oneof(goodChain, reshaped, fc.array(maybeMutated, { maxLength: 12 }), goodChain.chain((c) => fc.tuple(fc.nat(c.length - 1), mutate(c[0]!)).map(([at, m]) => c.map((d, k) => (k === at ? m : d)))));
}

/** Bundles: the real pair, or one trust domain's bundle with junk authorities (anything X509Bundle takes). */
function bundlesArb(): fc.Arbitrary<BundleSet<X509Bundle>> {
  const junk = fc.array(fc.oneof(fc.nat(pool.certs.length - 1).map((i) => pool.certs[i]!), fc.constant(pool.ca.der()).chain((c) => mutate(c))), { maxLength: 4 });
  const td = TrustDomain.parse('example.org');
  const weird = fc.tuple(junk, fc.boolean()).map(([extra, keepRoot]) => {
    const parsable = extra.filter((d) => onlyTypedErrors(() => new X509Bundle(td, [d]), BundleError) !== undefined);
    return new BundleSet<X509Bundle>([new X509Bundle(td, keepRoot ? [...parsable, pool.ca.der()] : parsable), pool.other.bundle()]);
  });
  return fc.oneof({ weight: 2, arbitrary: fc.constant(pool.bundles) }, { weight: 1, arbitrary: weird }, { weight: 1, arbitrary: fc.constant(new BundleSet<X509Bundle>()) });
}

const nowArb = fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.integer({ min: -48, max: 48 }).map((h) => new Date(Date.now() + h * HOUR)) });

describe('fuzz: SDK TLS peer verification', () => {
  it('accepts the well-formed chains it is given (so the properties below can see acceptance)', () => {
    for (const c of pool.good) expect(verifyPeerChain(c, pool.bundles).id.toString()).toMatch(/^spiffe:\/\//);
  });

  it('verifyPeerChain throws only X509SVIDError, stays fast, and every chain it accepts passes an independent check', () => {
    let accepted = 0;
    fuzz(
      fc.property(chainArb(), bundlesArb(), nowArb, (chain, bundles, at) => {
        const now = at ?? new Date();
        const got = onlyTypedErrors(() => verifyPeerChain(chain, bundles, now), ...VERIFY_ERRORS);
        if (got) {
          accepted++;
          expectSound(chain, bundles, now, got);
        }
      }),
      1500,
      8_000,
    );
    expect(accepted).toBeGreaterThan(0);
  }, 120_000);

  it('authorizers built from any ID text refuse only with TLSAuthorizationError, and agree with plain string comparison', () => {
    const idText = fc.oneof(
      fc.constantFrom('spiffe://example.org/w', 'spiffe://example.org/x', 'spiffe://other.test/o', 'spiffe://example.org', 'example.org', 'other.test'),
      fc.string({ maxLength: 30 }),
      fc.stringMatching(/^spiffe:\/\/[a-z.]{1,12}(\/[a-zA-Z0-9._-]{1,6}){0,3}$/),
    );
    fuzz(
      fc.property(fc.constantFrom(...pool.good.map((c) => c[0]!)), idText, fc.array(idText, { maxLength: 4 }), (leaf, want, several) => {
        const id = verifyPeerChain(pool.good.find((c) => c[0] === leaf)!, pool.bundles).id;
        const chain = [leaf];
        const check = (make: () => Authorizer): boolean | undefined => {
          const authorizer = onlyTypedErrors(make, SpiffeIdError);
          if (!authorizer) return undefined;
          return onlyTypedErrors(() => (authorizer(id, chain), true), TLSAuthorizationError) ?? false;
        };
        expect(check(authorizeAny)).toBe(true);
        const exact = check(() => authorizeID(want));
        if (exact !== undefined) expect(exact).toBe(want === id.toString());
        const member = check(() => authorizeMemberOf(want));
        // Like go-spiffe's TrustDomainFromString, a trust domain may be given as a name or as any SPIFFE ID in it.
        const td = id.trustDomain.name;
        if (member !== undefined) expect(member).toBe(want === td || want === `spiffe://${td}` || want.startsWith(`spiffe://${td}/`));
        const oneOf = check(() => authorizeOneOf(...several));
        if (oneOf !== undefined) expect(oneOf).toBe(several.includes(id.toString()));
      }),
      1000,
    );
  });

  it('peerChain walks any issuer graph node:tls could hand it (cycles, gaps, self links) and stops', () => {
    fuzz(
      fc.property(fc.array(fc.option(fc.nat(pool.certs.length - 1), { nil: undefined }), { maxLength: 24 }), fc.array(fc.integer({ min: -1, max: 30 }), { maxLength: 24 }), (picks, links) => {
        const raws = picks.map((i) => (i === undefined ? undefined : pool.certs[i]!));
        const out = onlyTypedErrors(() => peerChain(linkedPeer(raws, links)));
        expect(out!.length).toBeLessThanOrEqual(16);
        if (out!.length > 0) expect(hex(out![0]!)).toBe(hex(raws[0]!));
      }),
      2000,
    );
  });

  it('a client (checkServerIdentity) and a hooked server refuse a bad peer with a typed error and accept only a sound one', () => {
    const ctx: X509Context = { svids: [pool.svid], bundles: pool.bundles };
    const source = new StaticSource(pool.svid, ctx);
    const server = Object.assign(new EventEmitter(), { requestCert: true, setSecureContext: () => {} }) as unknown as Server;
    const refused: Error[] = [];
    const unhook = hookMTLSServer(server, source, authorizeMemberOf('example.org'), { onRefused: (err) => refused.push(err) });
    const client = mtlsClientOptions(source, authorizeMemberOf('example.org'));
    const typed = (e: Error): boolean => e instanceof X509SVIDError || e instanceof TLSAuthorizationError;
    fuzz(
      fc.property(chainArb(), (chain) => {
        const peer = linkedPeer(chain, chain.map((_, i) => i + 1));
        const linked = peerChain(peer);
        const fromClient = onlyTypedErrors(() => client.checkServerIdentity!('ignored.example', peer as DetailedPeerCertificate));
        let destroyed = false;
        const socket = { getPeerCertificate: () => peer, destroy: () => void (destroyed = true) } as unknown as TLSSocket;
        refused.length = 0;
        onlyTypedErrors(() => server.emit('secureConnection', socket));
        if (fromClient === undefined) {
          // Accepted by the client: the server accepts too, and the chain is sound and in example.org.
          expect(destroyed).toBe(false);
          const got = verifyPeerChain(linked, pool.bundles);
          expectSound(linked, pool.bundles, new Date(), got);
          expect(got.id.trustDomain.name).toBe('example.org');
        } else {
          expect(typed(fromClient), `${fromClient.name}: ${fromClient.message}`).toBe(true);
          expect(destroyed).toBe(true);
          // Same refusal on both sides (reasons, not messages: a time check's message carries its own now).
          expect(refused.map((e) => (e as X509SVIDError).reason ?? e.name)).toEqual([(fromClient as X509SVIDError).reason ?? fromClient.name]);
        }
      }),
      800,
      5_000,
    );
    unhook();
  }, 60_000);
});

/** Kept apart so a failure names the input class: junk that no certificate parser accepts. */
describe('fuzz: SDK TLS on non-certificates', () => {
  it('random bytes and non-DER text as the leaf are refused with X509SVIDError', () => {
    fuzz(
      fc.property(fc.array(fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.string({ maxLength: 80 }).map((s) => new Uint8Array(Buffer.from(`-----BEGIN CERTIFICATE-----\n${s}`)))), { minLength: 1, maxLength: 3 }), (chain) => {
        expect(onlyTypedErrors(() => verifyPeerChain(chain, pool.bundles), ...VERIFY_ERRORS)).toBeUndefined();
      }),
      1000,
    );
  });
});
