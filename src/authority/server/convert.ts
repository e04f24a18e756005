/**
 * Server API values (proto-loader objects: keepCase, int64 as strings, bytes as Buffers) to the
 * agent's domain values. Entries are checked as spire-agent v1.13.3 checks them
 * (pkg/agent/client/util.go): an entry it would drop as malformed is dropped here too, with the reason.
 */
import { createPublicKey } from 'node:crypto';
import type { JWTAuthority, RegistrationEntry, TrustBundle } from '../../domain/types.js';

/** What the server sends for types.Entry under the agent's output mask. */
export interface EntryMessage {
  id?: string;
  spiffe_id?: { trust_domain?: string; path?: string } | null;
  selectors?: Array<{ type?: string; value?: string }>;
  federates_with?: string[];
  admin?: boolean;
  downstream?: boolean;
  revision_number?: string | number;
  store_svid?: boolean;
  hint?: string;
  created_at?: string | number;
}

export interface BundleMessage {
  trust_domain?: string;
  x509_authorities?: Array<{ asn1?: Uint8Array; tainted?: boolean }>;
  jwt_authorities?: Array<{ public_key?: Uint8Array; key_id?: string; expires_at?: string | number; tainted?: boolean }>;
  refresh_hint?: string | number;
  sequence_number?: string | number;
}

/** A synced entry: the domain entry plus what only the sync needs. */
export interface SyncedEntry {
  readonly entry: RegistrationEntry;
  /** store_svid entries go to SVIDStore plugins, never to workloads. */
  readonly storeSvid: boolean;
}

/** spiffe-agent asks for what spire-agent v1.13.3 asks for (its entryOutputMask). */
export const ENTRY_OUTPUT_MASK = Object.freeze({
  spiffe_id: true,
  selectors: true,
  federates_with: true,
  admin: true,
  downstream: true,
  revision_number: true,
  store_svid: true,
  hint: true,
  created_at: true,
});

const TD_NAME = /^[a-z0-9._-]+$/;

/** Accepts "example.org" or "spiffe://example.org" as spire-agent does; returns the bare name. */
export function trustDomainName(text: string): string | undefined {
  const name = text.startsWith('spiffe://') ? text.slice('spiffe://'.length) : text;
  return name.length > 0 && TD_NAME.test(name) ? name : undefined;
}

const SEGMENT = /^[A-Za-z0-9._-]+$/;

function spiffeIdOf(id: EntryMessage['spiffe_id']): string {
  if (!id) throw new Error('response missing SPIFFE ID');
  const td = trustDomainName(id.trust_domain ?? '');
  if (!td) throw new Error(`invalid SPIFFE ID: bad trust domain ${JSON.stringify(id.trust_domain ?? '')}`);
  const path = id.path ?? '';
  if (path !== '') {
    const segs = path.split('/');
    if (segs[0] !== '' || segs.slice(1).some((s) => !SEGMENT.test(s) || s === '.' || s === '..')) {
      throw new Error(`invalid SPIFFE ID: bad path ${JSON.stringify(path)}`);
    }
  }
  return `spiffe://${td}${path}`;
}

/** Throws with the reason when spire-agent would drop the entry as malformed. */
export function entryFromProto(e: EntryMessage): SyncedEntry {
  if (!e.id) throw new Error('missing entry ID');
  const spiffeId = spiffeIdOf(e.spiffe_id);
  const federatesWith = (e.federates_with ?? []).map((td) => {
    const name = trustDomainName(td);
    if (!name) throw new Error(`invalid federated trust domain ${JSON.stringify(td)}`);
    return name;
  });
  const sels = e.selectors ?? [];
  if (sels.length === 0) throw new Error('selector list is empty');
  const selectors = sels.map((s) => {
    if (!s.type) throw new Error('missing selector type');
    if (s.type.includes(':')) throw new Error("selector type contains ':'");
    if (!s.value) throw new Error('missing selector value');
    return Object.freeze({ type: s.type, value: s.value });
  });
  const entry: RegistrationEntry = Object.freeze({
    id: e.id,
    spiffeId,
    // Not in the agent's output mask: the server applies parent, TTLs and DNS names when it signs.
    parentId: '',
    selectors: Object.freeze(selectors),
    x509SvidTtl: 0,
    jwtSvidTtl: 0,
    dnsNames: Object.freeze([]),
    hint: e.hint ?? '',
    federatesWith: Object.freeze(federatesWith),
    admin: e.admin ?? false,
    downstream: e.downstream ?? false,
    createdAt: Number(e.created_at ?? 0),
    revisionNumber: Number(e.revision_number ?? 0),
    jwtSvidIncludeJti: false,
  });
  return { entry, storeSvid: e.store_svid ?? false };
}

function jwkOf(der: Uint8Array): JWTAuthority['publicKey'] {
  return createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' }).export({ format: 'jwk' });
}

/** Throws when a key cannot be read: the whole bundle is then skipped, as spire-agent skips a malformed bundle. */
export function bundleFromProto(b: BundleMessage): TrustBundle {
  const trustDomain = trustDomainName(b.trust_domain ?? '');
  if (!trustDomain) throw new Error(`bundle has an invalid trust domain ${JSON.stringify(b.trust_domain ?? '')}`);
  const x509 = b.x509_authorities ?? [];
  const jwtAuthorities = (b.jwt_authorities ?? []).map((k) => {
    if (!k.key_id) throw new Error('JWT authority without a key ID');
    return Object.freeze({ keyId: k.key_id, publicKey: jwkOf(k.public_key ?? new Uint8Array()), expiresAt: Number(k.expires_at ?? 0), tainted: k.tainted ?? false });
  });
  return Object.freeze({
    trustDomain,
    x509Authorities: Object.freeze(x509.map((c) => new Uint8Array(c.asn1 ?? new Uint8Array()))),
    jwtAuthorities: Object.freeze(jwtAuthorities),
    sequenceNumber: Number(b.sequence_number ?? 0),
    refreshHintSeconds: Number(b.refresh_hint ?? 0),
    taintedX509Authorities: Object.freeze(x509.filter((c) => c.tainted).map((c) => new Uint8Array(c.asn1 ?? new Uint8Array()))),
  });
}
