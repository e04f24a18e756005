/**
 * The agent SVID rotator, as spire-agent v1.13.3's (pkg/agent/svid/rotator.go and the manager's
 * error handling): every 5 s decide with shouldRotateAgentSVID; a re-attestable node attests
 * again, others call RenewAgent. A server verdict of "re-attest" re-attests where the method
 * allows and otherwise deletes the stored SVID and stops; "banned" deletes it and stops. An
 * SVID that expired while rotation kept failing also stops the agent.
 *
 * Checks are spaced by spire-agent's rotator backoff (pkg/common/backoff from 5 s): about 5 s
 * (±10 %) while all is well, ×1.5 after each failed rotation up to 2 min. spire-agent logs every
 * failure as an error; here the first failure and each different one are errors, repeats debug,
 * and the first success after failures says how many attempts it took.
 */
import type { Clock } from '../../clock.js';
import type { Logger } from '../../telemetry/logger.js';
import { shouldRotateAgentSVID, type AgentSVIDState } from './agent-svid.js';
import { Backoff } from './backoff.js';
import { failureKind } from './bootstrap-retry.js';
import { serverVerdict } from './server-errors.js';
import { SessionError } from './session-errors.js';

/** spire-agent's DefaultRotatorInterval, and its backoff's cap (24 × the interval). */
const CHECK_INTERVAL_MS = 5_000;
const MAX_BACKOFF_MS = 24 * CHECK_INTERVAL_MS;

export interface AgentRotationDeps {
  readonly clock: Clock;
  readonly log: Logger;
  readonly availabilityTargetMs: number;
  readonly current: () => AgentSVIDState;
  readonly renew: (signal: AbortSignal) => Promise<void>;
  readonly reattest: (signal: AbortSignal) => Promise<void>;
  readonly deleteSVID: () => Promise<void>;
  readonly fatal: (err: Error) => void;
  /** The jitter's random source; tests pin it. */
  readonly random?: () => number;
}

export class AgentRotation {
  private cancelTimer: (() => void) | undefined;
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private failures = 0;
  /** What the last failure was (failureKind), so a repeat is not logged as news. */
  private lastFailure: string | undefined;
  private readonly backoff: Backoff;
  private stopped = false;
  /** Set when the SVID chains to a tainted authority: rotate at the next check whatever its age. */
  private tainted = false;

  constructor(private readonly d: AgentRotationDeps) {
    this.backoff = new Backoff(CHECK_INTERVAL_MS, MAX_BACKOFF_MS, d.random);
  }

  /** Checks at once (an SVID loaded from disk may already be past its rotation time), then every 5 s. */
  start(): void {
    void this.tick().finally(() => this.schedule(this.backoff.next()));
  }

  stop(): void {
    this.stopped = true;
    this.cancelTimer?.();
    this.abort.abort();
  }

  /** One check now (tests, and the timer). */
  async tick(): Promise<void> {
    if (this.stopped) return;
    if (this.running) return this.running;
    this.running = this.rotateIfNeeded().finally(() => (this.running = undefined));
    return this.running;
  }

  markTainted(): void {
    if (this.tainted) return;
    this.tainted = true;
    this.d.log.info('Agent SVID is tainted by a root authority, forcing rotation');
  }

  /** A refusal seen by another caller (entry sync, SVID signing). */
  async handleServerError(err: unknown): Promise<void> {
    const verdict = serverVerdict(err);
    if (verdict === undefined || this.stopped) return;
    await this.onVerdict(verdict, err);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.cancelTimer = this.d.clock.setTimer(ms, () => {
      void this.tick().finally(() => this.schedule(this.backoff.next()));
    });
  }

  private async rotateIfNeeded(): Promise<void> {
    const s = this.d.current();
    const now = this.d.clock.now();
    // As spire-agent's rotator: every check without an error starts the backoff over.
    if (!this.tainted && !shouldRotateAgentSVID(now, s.notBefore, s.notAfter, this.d.availabilityTargetMs)) {
      this.backoff.reset();
      return;
    }
    const what = s.reattestable ? 'reattest agent' : 'rotate agent SVID';
    try {
      if (s.reattestable) await this.d.reattest(this.abort.signal);
      else await this.d.renew(this.abort.signal);
      if (this.failures > 0) this.d.log.info({ attempt: this.failures + 1 }, `Could ${what} after failed attempts`);
      this.failures = 0;
      this.lastFailure = undefined;
      this.backoff.reset();
      this.tainted = false;
    } catch (err) {
      if (this.stopped) return;
      this.failures++;
      const message = (err as { details?: string }).details ?? (err as Error).message;
      const kind = failureKind(err);
      if (kind !== this.lastFailure) this.d.log.error({ error: message, attempt: this.failures }, `Could not ${what}`);
      else this.d.log.debug({ error: message, attempt: this.failures, repeated: true }, `Could not ${what}`);
      this.lastFailure = kind;
      const verdict = serverVerdict(err);
      if (verdict !== undefined) return this.onVerdict(verdict, err);
      if (this.d.clock.now() > s.notAfter) {
        this.stopped = true;
        this.d.fatal(new SessionError('attestation_failed', `session: current SVID has already expired and ${what} failed: ${message}; check that the SPIRE server is reachable, then restart the agent`, { cause: err }));
      }
    }
  }

  private async onVerdict(verdict: 'reattest' | 'shutdown', err: unknown): Promise<void> {
    const message = (err as { details?: string }).details ?? (err as Error).message;
    if (verdict === 'reattest' && this.d.current().reattestable) {
      this.d.log.warn({ error: message }, 'Agent needs to re-attest; will attempt to re-attest');
      try {
        await this.d.reattest(this.abort.signal);
        return;
      } catch (reErr) {
        this.d.log.error({ error: (reErr as Error).message }, 'Agent failed re-attestation; removing SVID and shutting down');
      }
    }
    this.stopped = true;
    this.cancelTimer?.();
    await this.d.deleteSVID().catch((e: unknown) => this.d.log.error({ error: (e as Error).message }, 'Failed to remove agent SVID'));
    if (verdict === 'shutdown') {
      this.d.log.warn({ error: message }, 'Agent is banned: removing SVID and shutting down');
      this.d.fatal(new SessionError('agent_banned', `session: the SPIRE server banned this agent (${message}); the stored SVID was removed. Ask an operator to delete the agent (spire-server agent delete), then attest again`, { cause: err }));
    } else {
      this.d.log.warn({ error: message }, 'Agent needs to re-attest: removing SVID and shutting down');
      this.d.fatal(new SessionError('agent_must_reattest', `session: the SPIRE server no longer accepts this agent's SVID (${message}) and its attestation method cannot be repeated; the stored SVID was removed: provide a new join token (or another node attestor) and restart`, { cause: err }));
    }
  }
}
