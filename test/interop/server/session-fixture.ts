/**
 * The ServerSession (node attestation, agent SVID, mTLS channel) run in-process against a real
 * spire-server v1.13.3 from test/helpers/spire. Needs only the SPIRE binaries (no go-client, no
 * root): without them the files are skipped outside CI and fail in CI.
 */
import * as grpc from '@grpc/grpc-js';
import { X509Certificate, createCipheriv, createDecipheriv, createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JoinTokenAttestor } from '../../../src/attestation/node/join-token/index.js';
import type { NodeAttestor } from '../../../src/attestation/node/types.js';
import { X509popAttestor } from '../../../src/attestation/node/x509pop/index.js';
import { rawUnary } from '../../../src/authority/server/clients.js';
import { createServerSession, type ServerSessionOptions } from '../../../src/authority/server/server-session.js';
import type { ServerSession } from '../../../src/authority/server/session.js';
import { systemClock } from '../../../src/clock.js';
import type { PluginConfig } from '../../../src/config/types.js';
import { DiskKeyManager } from '../../../src/keymanager/disk.js';
import { MemoryKeyManager } from '../../../src/keymanager/memory.js';
import type { KeyManager, ManagedKey } from '../../../src/keymanager/types.js';
import type { Logger } from '../../../src/telemetry/logger.js';
import { inCI } from '../../helpers/ci.js';
import { findSpire, type SpireBinaries, type SpireServer, type X509popFiles } from '../../helpers/spire/index.js';

export interface SessionPlan {
  skip: boolean;
  reason?: string;
  bins?: SpireBinaries;
}

export function planSessionSuite(): SessionPlan {
  const found = findSpire();
  const required = inCI() || process.env.SPIRE_REQUIRED === '1';
  if (found.reason && !required) console.warn(`SKIPPED (not in CI): ${found.reason}`);
  return { skip: found.reason !== undefined && !required, reason: found.reason, bins: found.bins };
}

/** A logger that keeps what it is told, so tests can check what the session said (and did not). */
export class MemoryLog implements Logger {
  constructor(readonly lines: string[] = []) {}
  child(): Logger {
    return this;
  }
  private add(level: string, o: Record<string, unknown> | string, msg?: string): void {
    this.lines.push(`${level} ${typeof o === 'string' ? o : `${msg ?? ''} ${JSON.stringify(o)}`}`);
  }
  trace(o: Record<string, unknown> | string, m?: string): void {
    this.add('trace', o, m);
  }
  debug(o: Record<string, unknown> | string, m?: string): void {
    this.add('debug', o, m);
  }
  info(o: Record<string, unknown> | string, m?: string): void {
    this.add('info', o, m);
  }
  warn(o: Record<string, unknown> | string, m?: string): void {
    this.add('warn', o, m);
  }
  error(o: Record<string, unknown> | string, m?: string): void {
    this.add('error', o, m);
  }
  has(text: string): boolean {
    return this.lines.some((l) => l.includes(text));
  }
}

export interface SessionSetup {
  dataDir: string;
  joinToken?: string;
  x509pop?: X509popFiles;
  trustBundlePath?: string;
  insecureBootstrap?: boolean;
  keyManager?: 'disk' | 'memory';
  retryBootstrap?: boolean;
  rebootstrapMode?: 'never' | 'auto' | 'always';
  rebootstrapDelayMs?: number;
}

export async function newDataDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'session-it-'));
}

export function pluginsFor(s: SessionSetup): PluginConfig[] {
  const p = (type: string, name: string, data: Record<string, unknown>): PluginConfig => ({ type, name, enabled: true, data, dataFile: undefined, path: `plugins.${type}.${name}` });
  const na = s.x509pop
    ? p('NodeAttestor', 'x509pop', { private_key_path: s.x509pop.privateKeyPath, certificate_path: s.x509pop.certificatePath, ...(s.x509pop.intermediatesPath ? { intermediates_path: s.x509pop.intermediatesPath } : {}) })
    : p('NodeAttestor', 'join_token', {});
  const km = (s.keyManager ?? 'disk') === 'disk' ? p('KeyManager', 'disk', { directory: s.dataDir }) : p('KeyManager', 'memory', {});
  return [na, km];
}

/** What the agent's catalogs build from pluginsFor(s), constructed directly so sessionFor stays synchronous. */
export function nodePluginsFor(s: SessionSetup): { nodeAttestor: NodeAttestor; keyManager: KeyManager } {
  const nodeAttestor = s.x509pop
    ? new X509popAttestor({ privateKeyPath: s.x509pop.privateKeyPath, certificatePath: s.x509pop.certificatePath, intermediatesPath: s.x509pop.intermediatesPath })
    : new JoinTokenAttestor(s.joinToken ?? '');
  const keyManager = (s.keyManager ?? 'disk') === 'disk' ? new DiskKeyManager({ directory: s.dataDir }) : new MemoryKeyManager();
  return { nodeAttestor, keyManager };
}

export function sessionFor(server: SpireServer, s: SessionSetup, log = new MemoryLog(), plugins = nodePluginsFor(s)): { session: ServerSession; log: MemoryLog } {
  const options: ServerSessionOptions = {
    trustDomain: server.trustDomain,
    dataDir: s.dataDir,
    serverAddress: '127.0.0.1',
    serverPort: server.port,
    trustBundlePath: s.insecureBootstrap ? undefined : (s.trustBundlePath ?? server.bundlePath),
    trustBundleUrl: undefined,
    trustBundleUnixSocket: undefined,
    trustBundleFormat: 'pem',
    insecureBootstrap: s.insecureBootstrap ?? false,
    rebootstrapMode: s.rebootstrapMode ?? 'never',
    rebootstrapDelayMs: s.rebootstrapDelayMs ?? 600_000,
    availabilityTargetMs: 0,
    retryBootstrap: s.retryBootstrap ?? false,
  };
  return { session: createServerSession({ options, ...plugins, log, clock: systemClock }), log };
}

/** An RPC only an attested agent may make (GetAuthorizedEntries), over the session's current mTLS channel. */
export function agentOnlyCall(session: ServerSession): Promise<Uint8Array> {
  return rawUnary(session.clients().entry, '/spire.api.server.entry.v1.Entry/GetAuthorizedEntries', new Uint8Array(), 10_000);
}

export function grpcCode(err: unknown): number | undefined {
  return (err as Partial<grpc.ServiceError>)?.code;
}

/** Decimal serial of the agent SVID's leaf, as `spire-server agent list` shows it. */
export function serialOf(session: ServerSession): string {
  const leaf = session.agentSVID().chain[0];
  return leaf ? BigInt(`0x${new X509Certificate(leaf).serialNumber}`).toString() : '';
}

/**
 * A fake of what issue 15's TPM-sealed key manager does, since no TPM runs here: each key rests
 * only as an AES-256-GCM blob under a sealing key the manager holds (the TPM's part), is unsealed
 * into a KeyObject for each signature and for each unsealForTLS, and dropped after. It counts
 * both, so a test sees the session uses nothing else of the key.
 */
export class SealedTestKeyManager implements KeyManager {
  readonly name = 'sealed-test';
  readonly calls = { sign: 0, unsealForTLS: 0 };
  private readonly sealingKey = randomBytes(32);
  private readonly sealed = new Map<string, { spki: Uint8Array; iv: Buffer; blob: Buffer; tag: Buffer }>();

  async generateKey(id: string): Promise<ManagedKey> {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.sealingKey, iv);
    const blob = Buffer.concat([c.update(privateKey.export({ type: 'pkcs8', format: 'der' })), c.final()]);
    this.sealed.set(id, { spki: new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })), iv, blob, tag: c.getAuthTag() });
    return this.key(id);
  }

  async getKeys(): Promise<readonly ManagedKey[]> {
    return [...this.sealed.keys()].map((id) => this.key(id));
  }

  private unseal(id: string): KeyObject {
    const s = this.sealed.get(id)!;
    const d = createDecipheriv('aes-256-gcm', this.sealingKey, s.iv);
    d.setAuthTag(s.tag);
    return createPrivateKey({ key: Buffer.concat([d.update(s.blob), d.final()]), format: 'der', type: 'pkcs8' });
  }

  private key(id: string): ManagedKey {
    const spki = this.sealed.get(id)!.spki;
    return Object.freeze({
      id,
      publicKeySpki: spki,
      sign: async (data: Uint8Array) => {
        this.calls.sign += 1;
        return new Uint8Array(sign('sha256', data, { key: this.unseal(id), dsaEncoding: 'der' }));
      },
      unsealForTLS: async () => {
        this.calls.unsealForTLS += 1;
        return this.unseal(id);
      },
    });
  }
}
