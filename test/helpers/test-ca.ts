/**
 * Test CA built on @peculiar/x509 (in the spirit of go-spiffe's internal/test/ca.go).
 * Real keys and real signatures; its knobs exist to produce every malformed SVID the
 * validators must reject.
 */
import { x509 } from '../../src/svid/x509-lib.js';
import { createHmac, generateKeyPairSync, randomBytes, sign as nodeSign, webcrypto } from 'node:crypto';
import { CompactSign, exportJWK, type CryptoKey as JoseCryptoKey } from 'jose';
import { JWTBundle, TrustDomain, X509Bundle, type JsonWebKey } from '../../src/svid/index.js';

const crypto = webcrypto as unknown as Crypto;
const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const KU = x509.KeyUsageFlags;
type CryptoKeyPair = { publicKey: CryptoKey; privateKey: CryptoKey };

export interface CAOptions {
  notBefore?: Date;
  notAfter?: Date;
  /** default true */
  isCA?: boolean;
  /** default keyCertSign|cRLSign; null omits the extension */
  keyUsages?: number | null;
  /** URI SAN of the CA; default `spiffe://<td>`; null for none */
  uri?: string | null;
}

export interface SVIDOptions {
  ttlMs?: number;
  notBefore?: Date;
  notAfter?: Date;
  /** URIs added after the SPIFFE ID */
  extraUris?: string[];
  /** replaces all URI SANs (use [] for none) */
  uris?: string[];
  dnsNames?: string[];
  isCA?: boolean;
  /** default digitalSignature|keyEncipherment|keyAgreement; null omits the extension */
  keyUsages?: number | null;
  /** 'ec-p256' (default) or 'rsa-2048' */
  keyType?: 'ec-p256' | 'rsa-2048';
}

export interface TestX509SVID {
  chain: Uint8Array[];
  privateKeyPkcs8: Uint8Array;
}

export interface JWTOptions {
  alg?: string;
  /** kid header; default the CA's key for `alg` */
  kid?: string;
  /** seconds since epoch; default now + 5 min */
  exp?: number;
  nbf?: number;
  iat?: number;
  /** header or claim names to drop: 'kid', 'typ', 'sub', 'exp', 'aud', 'iat' */
  omit?: string[];
  extraHeader?: Record<string, unknown>;
  extraClaims?: Record<string, unknown>;
  /** raw aud value (string, array, anything) instead of the aud argument */
  rawAud?: unknown;
}

interface JwtKey {
  kid: string;
  privateKey: JoseCryptoKey;
  jwk: JsonWebKey;
}

const JWT_KEY_ALGS = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] as const;

function b64url(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0] as number) & 0x7f;
  return b.toString('hex');
}

async function genKeys(keyType: 'ec-p256' | 'rsa-2048'): Promise<{ keys: CryptoKeyPair }> {
  if (keyType === 'rsa-2048') {
    const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };
    return { keys: (await crypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair };
  }
  return { keys: (await crypto.subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as CryptoKeyPair };
}

export class TestCA {
  readonly trustDomain: TrustDomain;
  readonly cert: x509.X509Certificate;
  readonly keys: CryptoKeyPair;
  readonly parent: TestCA | undefined;
  readonly #jwtKeys: Map<string, JwtKey>;

  private constructor(td: TrustDomain, cert: x509.X509Certificate, keys: CryptoKeyPair, parent: TestCA | undefined, jwtKeys: Map<string, JwtKey>) {
    this.trustDomain = td;
    this.cert = cert;
    this.keys = keys;
    this.parent = parent;
    this.#jwtKeys = jwtKeys;
  }

  static async create(td: string, opts: CAOptions = {}): Promise<TestCA> {
    const trustDomain = TrustDomain.parse(td);
    const { keys, cert } = await TestCA.#issueCA(trustDomain, opts, undefined);
    const jwtKeys = new Map<string, JwtKey>();
    for (const alg of JWT_KEY_ALGS) {
      jwtKeys.set(alg, await TestCA.#jwtKey(alg));
    }
    return new TestCA(trustDomain, cert, keys, undefined, jwtKeys);
  }

  static async #jwtKey(alg: string): Promise<JwtKey> {
    const params =
      alg.startsWith('ES')
        ? { name: 'ECDSA', namedCurve: `P-${alg === 'ES512' ? 521 : alg.slice(2)}` }
        : {
            name: alg.startsWith('PS') ? 'RSA-PSS' : 'RSASSA-PKCS1-v1_5',
            hash: `SHA-${alg.slice(2)}`,
            modulusLength: 2048,
            publicExponent: new Uint8Array([1, 0, 1]),
          };
    const pair = (await crypto.subtle.generateKey(params, true, ['sign', 'verify'])) as CryptoKeyPair;
    const jwk = (await exportJWK(pair.publicKey)) as JsonWebKey;
    delete (jwk as Record<string, unknown>)['alg'];
    return { kid: `${alg.toLowerCase()}-${randomBytes(6).toString('hex')}`, privateKey: pair.privateKey, jwk };
  }

  static async #issueCA(td: TrustDomain, opts: CAOptions, parent: TestCA | undefined): Promise<{ keys: CryptoKeyPair; cert: x509.X509Certificate }> {
    const keys = (await crypto.subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as CryptoKeyPair;
    const now = Date.now();
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(opts.isCA ?? true, undefined, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
    ];
    const ku = opts.keyUsages === undefined ? KU.keyCertSign | KU.cRLSign : opts.keyUsages;
    if (ku !== null) extensions.push(new x509.KeyUsagesExtension(ku, true));
    const uri = opts.uri === undefined ? td.idString() : opts.uri;
    if (uri !== null) extensions.push(new x509.SubjectAlternativeNameExtension([{ type: 'url', value: uri }]));
    const name = `C=US, O=SPIFFE, CN=${parent ? 'intermediate' : 'root'}-${randomBytes(4).toString('hex')}`;
    const base = {
      serialNumber: serial(),
      notBefore: opts.notBefore ?? new Date(now - 60_000),
      notAfter: opts.notAfter ?? new Date(now + 24 * 3600_000),
      signingAlgorithm: EC_P256,
      extensions,
    };
    const cert = parent
      ? await x509.X509CertificateGenerator.create(
          { ...base, subject: name, issuer: parent.cert.subject, publicKey: keys.publicKey, signingKey: parent.keys.privateKey },
          crypto,
        )
      : await x509.X509CertificateGenerator.createSelfSigned({ ...base, name, keys }, crypto);
    return { keys, cert };
  }

  /** A CA signed by this one, sharing its trust domain and JWT keys. */
  async createIntermediate(opts: CAOptions = {}): Promise<TestCA> {
    const { keys, cert } = await TestCA.#issueCA(this.trustDomain, opts, this);
    return new TestCA(this.trustDomain, cert, keys, this, this.#jwtKeys);
  }

  /** DER of this CA's certificate. */
  der(): Uint8Array {
    return new Uint8Array(this.cert.rawData);
  }

  /** This CA and its ancestors up to, not including, the root (what an SVID chain carries). */
  chainToRoot(): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let ca: TestCA | undefined = this; ca?.parent; ca = ca.parent) out.push(ca.der());
    return out;
  }

  root(): TestCA {
    let ca: TestCA = this;
    while (ca.parent) ca = ca.parent;
    return ca;
  }

  async createX509SVID(spiffeId: string, opts: SVIDOptions = {}): Promise<TestX509SVID> {
    const { keys } = await genKeys(opts.keyType ?? 'ec-p256');
    const now = Date.now();
    const notBefore = opts.notBefore ?? new Date(now - 10_000);
    const notAfter = opts.notAfter ?? new Date(notBefore.getTime() + (opts.ttlMs ?? 3600_000));
    const uris = opts.uris ?? [spiffeId, ...(opts.extraUris ?? [])];
    const names = [...uris.map((u) => ({ type: 'url' as const, value: u })), ...(opts.dnsNames ?? []).map((d) => ({ type: 'dns' as const, value: d }))];
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(opts.isCA ?? false, undefined, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
    ];
    const ku = opts.keyUsages === undefined ? KU.digitalSignature | KU.keyEncipherment | KU.keyAgreement : opts.keyUsages;
    if (ku !== null) extensions.push(new x509.KeyUsagesExtension(ku, true));
    if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
    const cert = await x509.X509CertificateGenerator.create(
      {
        serialNumber: serial(),
        subject: 'C=US, O=SPIRE',
        issuer: this.cert.subject,
        notBefore,
        notAfter,
        publicKey: keys.publicKey,
        signingKey: this.keys.privateKey,
        signingAlgorithm: EC_P256,
        extensions,
      },
      crypto,
    );
    const pkcs8 = new Uint8Array(await crypto.subtle.exportKey('pkcs8', keys.privateKey));
    return { chain: [new Uint8Array(cert.rawData), ...this.chainToRoot()], privateKeyPkcs8: pkcs8 };
  }

  /** X.509 bundle holding the root of this CA's hierarchy. */
  bundle(): X509Bundle {
    return new X509Bundle(this.trustDomain, [this.root().der()]);
  }

  jwtBundle(): JWTBundle {
    return new JWTBundle(this.trustDomain, new Map([...this.#jwtKeys.values()].map((k) => [k.kid, k.jwk])));
  }

  /** Signs a JWT-SVID; disallowed algs ('none', 'HS256', 'EdDSA') are produced by hand. */
  async createJWTSVID(sub: string, aud: string[], opts: JWTOptions = {}): Promise<string> {
    const alg = opts.alg ?? 'ES256';
    const omit = new Set(opts.omit ?? []);
    const nowS = Math.floor(Date.now() / 1000);
    const key = this.#jwtKeys.get(alg);
    const header: Record<string, unknown> = { alg, kid: opts.kid ?? key?.kid ?? 'no-such-key', typ: 'JWT', ...opts.extraHeader };
    const claims: Record<string, unknown> = {
      sub,
      aud: opts.rawAud !== undefined ? opts.rawAud : aud,
      exp: opts.exp ?? nowS + 300,
      iat: opts.iat ?? nowS,
      ...opts.extraClaims,
    };
    if (opts.nbf !== undefined) claims['nbf'] = opts.nbf;
    for (const name of omit) {
      delete header[name];
      delete claims[name];
    }
    const payload = Buffer.from(JSON.stringify(claims));
    if (key) {
      return new CompactSign(payload).setProtectedHeader(header as { alg: string }).sign(key.privateKey);
    }
    const signingInput = `${b64url(header)}.${payload.toString('base64url')}`;
    if (alg === 'none') return `${signingInput}.`;
    if (alg === 'HS256') return `${signingInput}.${createHmac('sha256', 'secret').update(signingInput).digest('base64url')}`;
    if (alg === 'EdDSA') {
      const { privateKey } = generateKeyPairSync('ed25519');
      return `${signingInput}.${nodeSign(null, Buffer.from(signingInput), privateKey).toString('base64url')}`;
    }
    throw new Error(`test-ca: no key for alg ${alg}`);
  }
}
