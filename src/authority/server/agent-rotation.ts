/**
 * The agent SVID rotator, as spire-agent v1.13.3's (pkg/agent/svid/rotator.go and the manager's
 * error handling): every 5 s decide with shouldRotateAgentSVID; a re-attestable node attests
 * again, others call RenewAgent. A server verdict of "re-attest" re-attests where the method
 * allows and otherwise deletes the stored SVID and stops; "banned" deletes it and stops. An
 * SVID that expired while rotation kept failing also stops the agent.
 */
import type { Clock } from '../../clock.js';
import type { Logger } from '../../telemetry/logger.js';
import { shouldRotateAgentSVID, type AgentSVIDState } from './agent-svid.js';
import { serverVerdict } from './server-errors.js';
import { SessionError } from './session-errors.js';

const CHECK_INTERVAL_MS = 5_000;
const MAX_BACKOFF_MS = 60_000;

export interface AgentRotationDeps {
  readonly clock: Clock;
  readonly log: Logger;
  readonly availabilityTargetMs: number;
  readonly current: () => AgentSVIDState;
  readonly renew: (signal: AbortSignal) => Promise<void>;
  readonly reattest: (signal: AbortSignal) => Promise<void>;
  readonly deleteSVID: () => Promise<void>;
  readonly fatal: (err: Error) => void;
}

export class AgentRotation {
  private cancelTimer: (() => void) | undefined;
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private failures = 0;
  private stopped = false;
  /** Set when the SVID chains to a tainted authority: rotate at the next check whatever its age. */
  private tainted = false;

  constructor(private readonly d: AgentRotationDeps) {}

  /** Checks at once (an SVID loaded from disk may already be past its rotation time), then every 5 s. */
  start(): void {
    void this.tick().finally(() => this.schedule(CHECK_INTERVAL_MS));
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
      void this.tick().finally(() => this.schedule(this.failures === 0 ? CHECK_INTERVAL_MS : Math.min(MAX_BACKOFF_MS, CHECK_INTERVAL_MS * 2 ** this.failures)));
    });
  }

  private async rotateIfNeeded(): Promise<void> {
    const s = this.d.current();
    const now = this.d.clock.now();
    if (!this.tainted && !shouldRotateAgentSVID(now, s.notBefore, s.notAfter, this.d.availabilityTargetMs)) return;
    const what = s.reattestable ? 'reattest agent' : 'rotate agent SVID';
    try {
      if (s.reattestable) await this.d.reattest(this.abort.signal);
      else await this.d.renew(this.abort.signal);
      this.failures = 0;
      this.tainted = false;
    } catch (err) {
      if (this.stopped) return;
      this.failures++;
      const message = (err as { details?: string }).details ?? (err as Error).message;
      this.d.log.error({ error: message }, `Could not ${what}`);
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
