/**
 * Workload X509-SVIDs through BatchNewX509SVID. The cache manager asks for one SVID at a time;
 * requests that arrive within a short window (and while a batch is in flight) are sent together,
 * at most `limit` CSRs per call. The limit follows spire-agent's size-limited backoff: it starts
 * at the server's 500 CSRs, halves after a failed call and doubles back after a good one.
 *
 * A wave (start-up, rotation) goes out WAVE_BATCH CSRs per call, one call at a time. spire-server
 * admits 500 CSRs a second per client IP (a token bucket that goes into debt and serves callers in
 * order): a 500-CSR call on an empty bucket made an urgent call behind it wait a second for its one
 * CSR. Behind a 50-CSR call it waits at most 0.1 s. The wave is no slower: that rate bounds it.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../clock.js';
import { certSerialAndValidity } from '../../svid/der.js';
import type { SignedX509SVID } from '../types.js';
import { ServerAuthorityError } from './authority-errors.js';
import { SERVER_CALL_TIMEOUT_MS, unary } from './rpc.js';

export const MAX_BATCH = 500;
export const WAVE_BATCH = 50;
/** Long enough to gather one wave of key generations, short against a workload's first fetch. */
export const COALESCE_MS = 15;
/** Urgent CSRs (a workload waits) that arrive together still go in one call. */
export const URGENT_COALESCE_MS = 2;

interface Pending {
  readonly entryId: string;
  readonly csr: Uint8Array;
  readonly resolve: (s: SignedX509SVID) => void;
  readonly reject: (e: Error) => void;
}

interface BatchResult {
  status?: { code?: number; message?: string };
  svid?: { cert_chain?: Uint8Array[]; expires_at?: string | number } | null;
}

export interface X509BatcherDeps {
  readonly client: () => grpc.Client;
  readonly clock: Clock;
  /** Told about every call's outcome, so reachability and refusals are tracked in one place. */
  readonly onCall: (err: unknown) => void;
  readonly coalesceMs?: number;
  /** Deadline of each call (SERVER_CALL_TIMEOUT_MS unless set). */
  readonly callTimeoutMs?: number;
}

export function signedFromChain(chain: readonly Uint8Array[]): SignedX509SVID {
  const leaf = chain[0];
  if (!leaf) throw new ServerAuthorityError('svid_malformed', 'server-authority: the server returned an X509-SVID with an empty chain');
  let facts;
  try {
    facts = certSerialAndValidity(leaf);
  } catch (err) {
    throw new ServerAuthorityError('svid_malformed', `server-authority: the server returned an X509-SVID that does not parse: ${(err as Error).message}`, { cause: err });
  }
  return { chain, ...facts };
}

export class X509Batcher {
  private queue: Pending[] = [];
  private urgentQueue: Pending[] = [];
  private urgentTimer: (() => void) | undefined;
  private timer: (() => void) | undefined;
  private inFlight = false;
  private limit = MAX_BATCH;
  private closed = false;
  /** Sizes of the batches sent, for tests and debug logs. */
  readonly sent: number[] = [];

  constructor(private readonly d: X509BatcherDeps) {}

  /**
   * `urgent`: a workload is waiting for this SVID. It goes out within URGENT_COALESCE_MS in a call
   * of its own (with other urgent ones), even while a batch is in flight, instead of behind a
   * start-up or rotation wave of hundreds of CSRs.
   */
  sign(entryId: string, csr: Uint8Array, urgent = false): Promise<SignedX509SVID> {
    if (this.closed) return Promise.reject(new ServerAuthorityError('closed', 'server-authority: closed'));
    return new Promise((resolve, reject) => {
      const p = { entryId, csr, resolve, reject };
      if (urgent) return this.pushUrgent(p);
      this.queue.push(p);
      this.schedule();
    });
  }

  /** A workload now waits for a CSR already queued: it moves to the urgent call. Returns whether one was queued. */
  expedite(entryId: string): boolean {
    const i = this.queue.findIndex((p) => p.entryId === entryId);
    if (i < 0 || this.closed) return false;
    const [p] = this.queue.splice(i, 1);
    this.pushUrgent(p as Pending);
    return true;
  }

  private pushUrgent(p: Pending): void {
    this.urgentQueue.push(p);
    this.armUrgent();
  }

  private armUrgent(): void {
    if (this.urgentTimer || this.urgentQueue.length === 0 || this.closed) return;
    this.urgentTimer = this.d.clock.setTimer(URGENT_COALESCE_MS, () => {
      this.urgentTimer = undefined;
      void this.call(this.urgentQueue.splice(0, this.limit));
      this.armUrgent();
    });
  }

  close(): void {
    this.closed = true;
    this.timer?.();
    this.timer = undefined;
    this.urgentTimer?.();
    this.urgentTimer = undefined;
    const q = [...this.queue, ...this.urgentQueue];
    this.queue = [];
    this.urgentQueue = [];
    for (const p of q) p.reject(new ServerAuthorityError('closed', 'server-authority: closed'));
  }

  private schedule(): void {
    if (this.timer || this.inFlight || this.queue.length === 0) return;
    this.timer = this.d.clock.setTimer(this.d.coalesceMs ?? COALESCE_MS, () => {
      this.timer = undefined;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.closed || this.inFlight || this.queue.length === 0) return;
    const batch = this.queue.splice(0, Math.min(this.limit, WAVE_BATCH));
    this.inFlight = true;
    try {
      await this.call(batch);
    } finally {
      this.inFlight = false;
    }
    // What queued up meanwhile goes out now: it has already waited for one round trip.
    if (this.queue.length > 0) void this.flush();
  }

  /** One BatchNewX509SVID call; settles every request in it, never throws. */
  private async call(batch: Pending[]): Promise<void> {
    this.sent.push(batch.length);
    try {
      const resp = await unary<{ results?: BatchResult[] }>(
        this.d.client(),
        'BatchNewX509SVID',
        { params: batch.map((p) => ({ entry_id: p.entryId, csr: p.csr })) },
        this.d.callTimeoutMs ?? SERVER_CALL_TIMEOUT_MS,
      );
      this.d.onCall(undefined);
      this.limit = Math.min(MAX_BATCH, this.limit * 2);
      const results = resp.results ?? [];
      batch.forEach((p, i) => settle(p, results[i]));
    } catch (err) {
      this.d.onCall(err);
      this.limit = Math.max(1, Math.floor(this.limit / 2));
      const e = new ServerAuthorityError('server_unavailable', `server-authority: BatchNewX509SVID failed: ${(err as Error).message}`, { cause: err });
      for (const p of batch) p.reject(e);
    }
  }
}

function settle(p: Pending, r: BatchResult | undefined): void {
  const code = r?.status?.code ?? 2;
  if (code !== 0 || !r?.svid) {
    const msg = r?.status?.message || 'no result for this entry';
    // NotFound: the entry was deleted or is no longer authorized for this agent.
    p.reject(new ServerAuthorityError(code === 5 ? 'entry_not_found' : 'svid_refused', `server-authority: the server did not sign an X509-SVID for entry ${p.entryId}: ${msg} (code ${code})`));
    return;
  }
  try {
    p.resolve(signedFromChain((r.svid.cert_chain ?? []).map((c) => new Uint8Array(c))));
  } catch (err) {
    p.reject(err as Error);
  }
}
