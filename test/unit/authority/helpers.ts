import { x509 } from '../../../src/svid/x509-lib.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { webcrypto } from 'node:crypto';
import type { EmbeddedAuthorityConfig } from '../../../src/config/types.js';
import type { RegistrationEntry } from '../../../src/authority/types.js';
import type { Logger } from '../../../src/telemetry/logger.js';
import { makeEntry } from '../../helpers/entries.js';

export const crypto = webcrypto as unknown as Crypto;
export const HOUR = 3_600_000;

export function config(over: Partial<EmbeddedAuthorityConfig> = {}): EmbeddedAuthorityConfig {
  return {
    entriesFile: undefined,
    caKeyType: 'ec-p256',
    caTtlMs: 24 * HOUR,
    defaultX509SvidTtlMs: HOUR,
    defaultJwtSvidTtlMs: 5 * 60_000,
    jwtIssuer: undefined,
    jwtKeyType: 'ec-p256',
    caSubject: { country: ['US'], organization: ['SPIFFE'], commonName: '' },
    federatedBundles: {},
    ...over,
  };
}

/** The authority tests' default entry: e1 → spiffe://example.org/web for unix:uid:1000. */
export function entry(over: Partial<RegistrationEntry> = {}): RegistrationEntry {
  return makeEntry('e1', ['unix:uid:1000'], { spiffeId: 'spiffe://example.org/web', parentId: 'spiffe://example.org/spire/agent/x', ...over });
}

export async function tempDir(): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), 'embedded-'));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** A workload CSR whose subject and SANs try to claim another identity (they must be ignored). */
export async function workloadCSR(): Promise<{ der: Uint8Array; keys: CryptoKeyPair }> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await crypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      name: 'CN=evil, O=Attacker',
      keys,
      signingAlgorithm: alg,
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://evil.org/admin' }])],
    },
    crypto,
  );
  return { der: new Uint8Array(csr.rawData), keys };
}

type CryptoKeyPair = { privateKey: CryptoKey; publicKey: CryptoKey };

/** Records log calls so tests can assert on what an operator would see. */
export class RecordingLogger implements Logger {
  readonly records: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  child(): Logger {
    return this;
  }
  private rec(level: string, obj: Record<string, unknown> | string, msg?: string): void {
    if (typeof obj === 'string') this.records.push({ level, obj: {}, msg: obj });
    else this.records.push({ level, obj, msg: msg ?? '' });
  }
  trace(o: Record<string, unknown> | string, m?: string): void { this.rec('trace', o, m); }
  debug(o: Record<string, unknown> | string, m?: string): void { this.rec('debug', o, m); }
  info(o: Record<string, unknown> | string, m?: string): void { this.rec('info', o, m); }
  warn(o: Record<string, unknown> | string, m?: string): void { this.rec('warn', o, m); }
  error(o: Record<string, unknown> | string, m?: string): void { this.rec('error', o, m); }
}
