/**
 * How many connections one uid may hold open at once on a socket. The Workload API socket is
 * open to every local user, and each connection holds descriptors (the socket and a pidfd, two
 * more when it goes through the :authority filter) and memory. Without a share, one user that
 * opens connections and keeps them (slowloris, abandoned or half-closed connections, or just
 * many processes) exhausts the agent's descriptors and every other workload is refused. With
 * it, that user is refused past its share and every other uid, root included, keeps its own.
 *
 * The share is an eighth of what the descriptor limit leaves for connections (at four fds
 * each), at most 4,096 and at least 16: 2,047 under the systemd unit's LimitNOFILE=65536, far
 * above what the workloads of one uid on a node hold open (go-spiffe and Envoy hold one or two
 * connections each). It applies only once the connections open together reach half of what the
 * limit allows: until then descriptors are plentiful, and a burst of one uid's clients (500 pods
 * of root restarting at once) is served whole, as by spire-agent, which has no such limit.
 */
import { SpiffeAgentError } from '../errors.js';
import { FD_RESERVE } from './accept-guard.js';

export class UidShareError extends SpiffeAgentError<'uid_connection_share'> {
  constructor(
    readonly uid: number,
    readonly share: number,
  ) {
    super(
      'uid_connection_share',
      `endpoints: uid ${uid} already holds ${share} connections or more, the most one user may hold while the agent's descriptors run short (an eighth of what the open-file limit leaves for connections); refusing more from it until some close`,
    );
  }
}

export const MAX_UID_SHARE = 4096;
export const MIN_UID_SHARE = 16;
/** Descriptors a connection may hold: socket, pidfd, and the two socketpair ends of a filtered one. */
const FDS_PER_CONNECTION = 4;

const connectionsFor = (fdLimit: number): number => Math.floor(Math.max(0, fdLimit - FD_RESERVE) / FDS_PER_CONNECTION);

/** The share for an open-file limit (see above). */
export function uidShareFor(fdLimit: number): number {
  return Math.min(MAX_UID_SHARE, Math.max(MIN_UID_SHARE, Math.floor(connectionsFor(fdLimit) / 8)));
}

/** How many connections open together make the shares apply: half of what the limit allows. */
export function uidSharePressureFor(fdLimit: number): number {
  return Math.floor(connectionsFor(fdLimit) / 2);
}

/**
 * Open streams (calls) one uid may hold at once, over all its connections. Each open call holds
 * memory (about 40 KiB: the HTTP/2 stream, the gRPC call, the response waiting to be sent), and
 * a client that never opens its flow-control window keeps every response it asked for. Each
 * connection allows 100 concurrent streams (grpc.max_concurrent_streams); without a per-user
 * bound, a user's connections times that is gigabytes. 4,096 calls is about 160 MiB, and more
 * than the workloads of one uid on a large node hold (go-spiffe keeps one to three streams per
 * process). Past it, a call ends at once with RESOURCE_EXHAUSTED, which SPIFFE clients retry.
 */
export const UID_STREAM_SHARE = 4096;

/** Counts what each uid holds, up to a share that applies once all together hold `pressure`. */
export class UidShare {
  private readonly held = new Map<number, number>();
  private total = 0;

  constructor(
    readonly share: () => number,
    private readonly pressure: () => number = () => 0,
  ) {}

  /** Counts one more for `uid` and returns its release (idempotent), or null when `uid` holds its share under pressure. */
  tryTake(uid: number): (() => void) | null {
    const n = this.held.get(uid) ?? 0;
    if (n >= this.share() && this.total >= this.pressure()) return null;
    this.held.set(uid, n + 1);
    this.total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const left = (this.held.get(uid) ?? 1) - 1;
      if (left > 0) this.held.set(uid, left);
      else this.held.delete(uid);
    };
  }

  /** What `uid` holds now. */
  count(uid: number): number {
    return this.held.get(uid) ?? 0;
  }
}
