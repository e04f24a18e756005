/**
 * The StreamSecrets state machine of spire-agent, without I/O: a decimal version that
 * counts cache updates, a fresh nonce per response, requests carrying another nonce
 * ignored as stale, NACKs noted (the request is still used: it may change the names),
 * and a response due when the requested names change or the cache updates, once there
 * is both a request and an update to answer it from.
 */
import { randomBytes } from 'node:crypto';
import type { DiscoveryRequest } from './messages.js';

export type RequestVerdict =
  /** Carries a nonce other than the last one sent: ignored entirely. */
  | { readonly kind: 'stale'; readonly expected: string }
  /** Used; `nack` when it rejects the last response sent. */
  | { readonly kind: 'accepted'; readonly nack: boolean; readonly namesChanged: boolean };

export function newNonce(): string {
  return randomBytes(4).toString('hex');
}

export function namesChanged(before: readonly string[], after: readonly string[]): boolean {
  if (before.length !== after.length) return true;
  const seen = new Set(before);
  return after.some((n) => !seen.has(n));
}

export class SdsStreamState {
  private counter = 0;
  private lastNonce = '';
  private lastSentVersion = '';
  private lastReq: DiscoveryRequest | undefined;
  private updated = false;
  private pending = false;

  constructor(private readonly nonce: () => string = newNonce) {}

  /** The version of the newest cache update seen ("0" before any). */
  get version(): string {
    return String(this.counter);
  }

  /** The version of the last response sent ("" before any): what an ACK must carry. */
  get versionSent(): string {
    return this.lastSentVersion;
  }

  /** Something the caller sees changed: a new version, sent at once if anything was asked for. */
  onUpdate(): void {
    this.counter++;
    this.updated = true;
    if (this.lastReq) this.pending = true;
  }

  onRequest(req: DiscoveryRequest): RequestVerdict {
    const nonce = req.response_nonce ?? '';
    if (this.lastNonce !== '' && nonce !== this.lastNonce) return { kind: 'stale', expected: this.lastNonce };
    const version = req.version_info ?? '';
    const nack = this.lastNonce !== '' && (version === '' || version !== this.lastSentVersion);
    const prev = this.lastReq;
    const changed = !prev || namesChanged(prev.resource_names ?? [], req.resource_names ?? []);
    // Envoy may leave the node out after the first request; what it said before still holds.
    this.lastReq = req.node || !prev?.node ? req : { ...req, node: prev.node };
    if (changed) this.pending = true;
    return { kind: 'accepted', nack, namesChanged: changed };
  }

  /** The request to answer now, with the version and nonce to send, or undefined if nothing is due. */
  due(): { readonly req: DiscoveryRequest; readonly version: string; readonly nonce: string } | undefined {
    if (!this.pending || !this.updated || !this.lastReq) return undefined;
    return { req: this.lastReq, version: this.version, nonce: this.nonce() };
  }

  /** The response built from `due()` went out. */
  sent(version: string, nonce: string): void {
    this.lastNonce = nonce;
    this.lastSentVersion = version;
    this.pending = false;
  }
}
