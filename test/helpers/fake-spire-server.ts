/**
 * A FAKE SPIRE server for unit tests only: an in-process grpc-js server (plaintext, loopback)
 * answering the Entry, Bundle and SVID calls the server authority makes, from our own protos,
 * with paging that follows v1.13.3's SyncAuthorizedEntries rules. It signs with a TestCA and
 * ignores CSR keys. hang() makes it accept calls and never answer them, as a stopped or stuck
 * server does, until resume() (hung-server.test.ts does the same with the real server under
 * SIGSTOP). FakeSession is a ServerSession whose clients talk to it.
 *
 * Each behaviour test/unit/authority/server/server-authority.test.ts checks against it is also
 * checked against the real spire-server v1.13.3 in test/interop/server/ (both agents where
 * spire-agent can do the same):
 *   sync paging, new and changed entries ...... authority-sync, scale, entry-recreate
 *   an entry recreated with a new created_at ... entry-recreate
 *   GetAuthorizedEntries ....................... authority-sync
 *   malformed and store_svid entries ........... entries-dropped
 *   a failed first sync ........................ authority-changes
 *   own bundle to the session, tainted ones .... authority-changes, ca-rotation, session-taint
 *   change published only when visible ......... authority-changes
 *   federated bundles, one missing ............. differential, federated-missing
 *   one call, the 500-CSR cap, one CSR refused . authority-signing, entries-dropped
 *   outage warning, reachable again, status .... authority-outage-jwt, outage
 *
 * What only this fake shows, and why the real server cannot:
 * - Which entry IDs the agent asks for on each SyncAuthorizedEntries page, and that a set of at
 *   most 500 needs no second request: the real server does not report what an agent asked; the
 *   real tests check the outcome (every entry arrives, a changed one is replaced).
 * - Dropping an entry with an invalid SPIFFE ID or federated trust domain, or with no entry ID:
 *   v1.13.3 never serves them. Its datastore skips rows without an entry ID
 *   (pkg/server/datastore/sqlstore/sqlstore.go, rowsToCommonRegistrationEntries). The other two
 *   fail api.RegistrationEntryToProto (pkg/server/api/entry.go), which both entry caches apply to
 *   what they read: the full cache leaves out an invalid SPIFFE ID (pkg/server/cache/entrycache/
 *   fullcache_ds.go, filterEntries) and fails to rebuild on the rest; the events-based cache drops
 *   an entry it cannot convert ("Removed malformed registration entry from cache") or fails to
 *   load. The selector shapes it does serve are written into its datastore by
 *   entries-dropped.test.ts.
 * - A first sync answered with an error status (failWith INTERNAL): a real server cannot be made
 *   to; authority-changes checks a first sync that fails because the server is down, and
 *   agent-svid the server refusing a banned agent.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { loadServiceConstructors, openServerChannel, type ServerChannel } from '../../src/authority/server/clients.js';
import type { AgentSVIDStatus, ServerClients, ServerSession } from '../../src/authority/server/session.js';
import { PROTO_OPTIONS, protoRoot } from '../../src/endpoints/proto.js';
import { TestCA } from './test-ca.js';

export interface FakeEntry {
  id: string;
  spiffe_id: { trust_domain: string; path: string };
  selectors: { type: string; value: string }[];
  federates_with?: string[];
  revision_number?: number;
  created_at?: number;
  store_svid?: boolean;
  hint?: string;
}

type Call = { method: string; request: unknown };

function service(file: string, name: string): grpc.ServiceDefinition {
  const root = protoRoot();
  const def = protoLoader.loadSync(join(root, file), { ...PROTO_OPTIONS, includeDirs: [root] });
  return def[name] as grpc.ServiceDefinition;
}

const status = (code: grpc.status, details: string) => Object.assign(new Error(details), { code, details });

export class FakeSpireServer {
  readonly entries = new Map<string, FakeEntry>();
  readonly federated = new Map<string, { trust_domain: string; x509_authorities: { asn1: Uint8Array }[] }>();
  readonly calls: Call[] = [];
  pageSize = 500;
  /** Extra X.509 authorities (e.g. a prepared one) and which are tainted. */
  extraAuthorities: { asn1: Uint8Array; tainted: boolean }[] = [];
  taintOwn = false;
  jwtKeys: { public_key: Uint8Array; key_id: string; expires_at: number; tainted: boolean }[];
  /** Set to make every call fail with this status. */
  failWith: grpc.status | undefined;
  /** Lifetime of the workload X509-SVIDs it signs (default: 1 h, backdated 10 s). */
  svidTtlMs: number | undefined;
  /** Lifetime of the JWT-SVIDs it signs. */
  jwtTtlS = 300;
  /** Methods that hang ('all' for every one), and the calls held meanwhile. */
  private hanging: Set<string> | 'all' | undefined;
  private readonly held: (() => void)[] = [];
  private server: grpc.Server | undefined;
  port = 0;

  private constructor(readonly ca: TestCA) {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.jwtKeys = [{ public_key: publicKey.export({ type: 'spki', format: 'der' }), key_id: 'kid-1', expires_at: 0, tainted: false }];
  }

  static async start(td = 'example.org'): Promise<FakeSpireServer> {
    const s = new FakeSpireServer(await TestCA.create(td));
    await s.listen();
    return s;
  }

  get trustDomain(): string {
    return this.ca.trustDomain.name;
  }

  addEntries(n: number, prefix = 'e', extra: Partial<FakeEntry> = {}): FakeEntry[] {
    const out: FakeEntry[] = [];
    for (let i = 0; i < n; i++) {
      const id = `${prefix}-${String(i).padStart(5, '0')}`;
      const e: FakeEntry = { id, spiffe_id: { trust_domain: this.trustDomain, path: `/${id}` }, selectors: [{ type: 'unix', value: `uid:${1000 + i}` }], revision_number: 0, created_at: 1700000000, ...extra };
      this.entries.set(id, e);
      out.push(e);
    }
    return out;
  }

  count(method: string): number {
    return this.calls.filter((c) => c.method === method).length;
  }

  /** From now on, calls to `methods` (all, if none are named) are accepted and never answered. */
  hang(...methods: string[]): void {
    this.hanging = methods.length > 0 ? new Set(methods) : 'all';
  }

  /** Answers the held calls (a resumed server works through what queued up) and stops hanging. */
  resume(): void {
    this.hanging = undefined;
    for (const run of this.held.splice(0)) run();
  }

  /** How many calls are being held unanswered. */
  get heldCalls(): number {
    return this.held.length;
  }

  /** Holds `run` while `method` hangs; returns whether it did. */
  private hold(method: string, request: unknown, run: () => void): boolean {
    if (this.hanging !== 'all' && !this.hanging?.has(method)) return false;
    this.calls.push({ method: `${method}.held`, request });
    this.held.push(run);
    return true;
  }

  async listen(port = this.port): Promise<void> {
    const server = new grpc.Server();
    const guard = <T>(method: string, req: unknown, cb: grpc.sendUnaryData<T>, fn: () => T): void => {
      if (this.hold(method, req, () => guard(method, req, cb, fn))) return;
      this.calls.push({ method, request: req });
      if (this.failWith !== undefined) return cb(status(this.failWith, 'fake failure'), null);
      try {
        cb(null, fn());
      } catch (err) {
        cb(err as grpc.ServiceError, null);
      }
    };
    server.addService(service('spire/api/server/entry/v1/entry.proto', 'spire.api.server.entry.v1.Entry'), {
      GetAuthorizedEntries: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) =>
        guard('GetAuthorizedEntries', call.request, cb, () => ({ entries: [...this.entries.values()] })),
      SyncAuthorizedEntries: (call: grpc.ServerDuplexStream<{ ids?: string[]; output_mask?: unknown }, unknown>) => this.sync(call),
    });
    server.addService(service('spire/api/server/bundle/v1/bundle.proto', 'spire.api.server.bundle.v1.Bundle'), {
      GetBundle: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) =>
        guard('GetBundle', call.request, cb, () => ({
          trust_domain: this.trustDomain,
          x509_authorities: [{ asn1: this.ca.der(), tainted: this.taintOwn }, ...this.extraAuthorities],
          jwt_authorities: this.jwtKeys,
          sequence_number: 1,
        })),
      GetFederatedBundle: (call: grpc.ServerUnaryCall<{ trust_domain: string }, unknown>, cb: grpc.sendUnaryData<unknown>) =>
        guard('GetFederatedBundle', call.request, cb, () => {
          const b = this.federated.get(call.request.trust_domain);
          if (!b) throw status(grpc.status.NOT_FOUND, 'bundle not found');
          return b;
        }),
    });
    const handlers = {
      BatchNewX509SVID: (call: grpc.ServerUnaryCall<{ params: { entry_id: string; csr: Uint8Array }[] }, unknown>, cb: grpc.sendUnaryData<unknown>): void => {
        if (this.hold('BatchNewX509SVID', call.request, () => handlers.BatchNewX509SVID(call, cb))) return;
        this.calls.push({ method: 'BatchNewX509SVID', request: call.request });
        if (this.failWith !== undefined) return cb(status(this.failWith, 'fake failure'), null);
        void Promise.all(
          call.request.params.map(async (p) => {
            const e = this.entries.get(p.entry_id);
            if (!e) return { status: { code: grpc.status.NOT_FOUND, message: 'entry not found or not authorized' } };
            const ttl = this.svidTtlMs === undefined ? { ttlMs: 3_600_000 } : { ttlMs: this.svidTtlMs, notBefore: new Date(Date.now() - 1000) };
            const svid = await this.ca.createX509SVID(`spiffe://${e.spiffe_id.trust_domain}${e.spiffe_id.path}`, ttl);
            return { status: { code: 0, message: 'OK' }, svid: { cert_chain: svid.chain, expires_at: 0 } };
          }),
        ).then((results) => cb(null, { results }));
      },
      NewJWTSVID: (call: grpc.ServerUnaryCall<{ entry_id: string; audience: string[] }, unknown>, cb: grpc.sendUnaryData<unknown>): void => {
        if (this.hold('NewJWTSVID', call.request, () => handlers.NewJWTSVID(call, cb))) return;
        this.calls.push({ method: 'NewJWTSVID', request: call.request });
        if (this.failWith !== undefined) return cb(status(this.failWith, 'fake failure'), null);
        const e = this.entries.get(call.request.entry_id);
        if (!e) return cb(status(grpc.status.NOT_FOUND, 'entry not found'), null);
        const now = Math.floor(Date.now() / 1000);
        void this.ca
          .createJWTSVID(`spiffe://${e.spiffe_id.trust_domain}${e.spiffe_id.path}`, call.request.audience, { iat: now, exp: now + this.jwtTtlS })
          .then((token) => cb(null, { svid: { token, issued_at: now, expires_at: now + this.jwtTtlS } }));
      },
    };
    server.addService(service('spire/api/server/svid/v1/svid.proto', 'spire.api.server.svid.v1.SVID'), handlers);
    // Only RenewAgent: the session's own calls are tested against the real server.
    server.addService(service('spire/api/server/agent/v1/agent.proto', 'spire.api.server.agent.v1.Agent'), {
      RenewAgent: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) =>
        guard('RenewAgent', call.request, cb, () => ({ svid: { cert_chain: [this.ca.der()], expires_at: 0 } })),
    });
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.server = server;
  }

  /** Pages as v1.13.3 does: all entries in one response when they fit, else revisions, then entries by id. */
  private sync(call: grpc.ServerDuplexStream<{ ids?: string[]; output_mask?: unknown }, unknown>): void {
    // Not read while held: what the agent sends waits in the stream, as in a stopped server's socket.
    if (this.hold('SyncAuthorizedEntries', undefined, () => this.sync(call))) return;
    this.calls.push({ method: 'SyncAuthorizedEntries', request: undefined });
    if (this.failWith !== undefined) {
      call.emit('error', status(this.failWith, 'fake failure'));
      return;
    }
    const all = [...this.entries.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
    let first = true;
    call.on('data', (req: { ids?: string[] }) => {
      if (first) {
        first = false;
        if ((req.ids ?? []).length > 0) return void call.emit('error', status(grpc.status.INVALID_ARGUMENT, 'ids on the first request'));
        if (all.length <= this.pageSize) {
          call.write({ entries: all, more: false });
          return;
        }
        for (let i = 0; i < all.length; i += this.pageSize) {
          const page = all.slice(i, i + this.pageSize);
          call.write({ entry_revisions: page.map((e) => ({ id: e.id, revision_number: e.revision_number ?? 0, created_at: e.created_at ?? 0 })), more: i + this.pageSize < all.length });
        }
        return;
      }
      this.calls.push({ method: 'SyncAuthorizedEntries.ids', request: req.ids });
      if ((req.ids ?? []).length > this.pageSize) return void call.emit('error', status(grpc.status.INVALID_ARGUMENT, 'too many ids'));
      call.write({ entries: (req.ids ?? []).map((id) => this.entries.get(id)).filter(Boolean), more: false });
    });
    call.on('end', () => call.end());
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    // Held calls never finish, so a graceful shutdown would wait for ever.
    const held = this.held.splice(0).length > 0;
    this.hanging = undefined;
    if (s && !held) await new Promise<void>((r) => s.tryShutdown(() => r()));
    s?.forceShutdown();
  }
}

/** A FAKE ServerSession for unit tests: plaintext clients to a FakeSpireServer, no attestation. */
export class FakeSession implements ServerSession {
  private channel: ServerChannel | undefined;
  readonly bundles: (readonly Uint8Array[])[] = [];
  readonly serverErrors: unknown[] = [];
  private readonly fatal = new Set<(err: Error) => void>();

  constructor(private readonly server: FakeSpireServer) {}

  async start(): Promise<void> {
    this.channel = openServerChannel(loadServiceConstructors(), `127.0.0.1:${this.server.port}`, grpc.credentials.createInsecure());
  }
  async close(): Promise<void> {
    this.channel?.close();
  }
  clients(): ServerClients {
    if (!this.channel) throw new Error('fake session: not started');
    return this.channel;
  }
  agentSVID(): AgentSVIDStatus {
    return { spiffeId: `spiffe://${this.server.trustDomain}/spire/agent/fake`, chain: [this.server.ca.der()], notAfter: Date.now() + 3_600_000, renewedAt: Date.now() };
  }
  async updateBundle(x509: readonly Uint8Array[]): Promise<void> {
    this.bundles.push(x509);
  }
  onFatal(l: (err: Error) => void): () => void {
    this.fatal.add(l);
    return () => this.fatal.delete(l);
  }
  async handleServerError(err: unknown): Promise<void> {
    this.serverErrors.push(err);
  }
  /** How often the authority said the server answers again after failing. */
  answeredAgain = 0;
  serverAnsweredAgain(): void {
    this.answeredAgain++;
  }
}
