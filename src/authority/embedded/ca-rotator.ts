import { setWallTimer, type Clock } from '../../clock.js';
import type { KeyType } from '../../config/types.js';
import type { Logger } from '../../telemetry/logger.js';
import { F } from '../../telemetry/names.js';
import { createGeneration, nextCheckAt, rotationStep, validAt, type CAGeneration, type CASubject } from './ca.js';
import { CAStore, type CAState } from './ca-store.js';
import { EmbeddedAuthorityError } from './errors.js';

export interface CARotatorOptions {
  trustDomain: string;
  dataDir: string;
  caKeyType: KeyType;
  jwtKeyType: KeyType;
  caTtlMs: number;
  subject: CASubject;
  clock: Clock;
  log: Logger;
  /** Called after the set of published authorities changed (prepare, activate, expiry). */
  onChange: () => void;
}

/**
 * Keeps the CA and JWT key generations on schedule: the successor is created and
 * published at 1/2 of the active generation's lifetime, takes over at 2/3, and the
 * retired one stays published until it expires. Every state change is persisted
 * before it is announced. The schedule follows the wall clock, because validity does:
 * timers notice wall-clock jumps (setWallTimer), and signing checks the schedule
 * against the wall clock at that moment (current()), so a host that resumes a day
 * later, or whose clock is set back, signs with a CA valid now, without a restart.
 */
export class CARotator {
  private readonly store: CAStore;
  private state: CAState | undefined;
  private cancelTimer: (() => void) | undefined;
  private closed = false;
  /** Ticks run one at a time: key generation is async and must not interleave. */
  private running: Promise<void> = Promise.resolve();

  constructor(private readonly o: CARotatorOptions) {
    // Below this the successor would be due before the new CA is even written.
    if (!(o.caTtlMs >= 60_000)) {
      throw new EmbeddedAuthorityError('ca_ttl', `embedded-ca: ca_ttl must be at least 1m (got ${o.caTtlMs} ms)`);
    }
    this.store = new CAStore(o.dataDir);
  }

  get dir(): string {
    return this.store.dir;
  }

  async start(): Promise<void> {
    const loaded = await this.store.load();
    if (loaded) {
      for (const g of [loaded.active, ...(loaded.next ? [loaded.next] : []), ...loaded.retired]) {
        const td = g.trustDomain;
        if (td !== this.o.trustDomain) {
          throw new EmbeddedAuthorityError(
            'ca_trust_domain',
            `embedded-ca: the CA in ${this.store.dir} is for trust domain "${td ?? '?'}", not "${this.o.trustDomain}"; use another data_dir or remove that directory`,
          );
        }
      }
      this.state = loaded;
      this.o.log.info({ [F.path]: this.store.dir, serial: loaded.active.serial }, 'Loaded embedded CA');
    }
    // Catches up on anything due while the agent was down (including creating the first CA).
    await this.tick(false);
  }

  /** Active generation: signs X.509- and JWT-SVIDs. */
  active(): CAGeneration {
    if (!this.state) throw new EmbeddedAuthorityError('not_started', 'embedded-ca: not started; call start() first');
    return this.state.active;
  }

  /**
   * The generation to sign with at this moment: if the schedule says something is due
   * by the wall clock now (a timer may not have noticed a clock jump yet), the rotation
   * runs first, so nobody is told to wait for it.
   */
  async current(): Promise<CAGeneration> {
    const s = this.state;
    if (!s || rotationStep(s.active, s.next, this.o.clock.now()) !== 'none') await this.tick();
    const g = this.active();
    if (!validAt(g, this.o.clock.now())) {
      throw new EmbeddedAuthorityError('ca_not_valid', 'embedded-ca: no CA is valid at the current time; the rotation has failed (see the previous errors)');
    }
    return g;
  }

  /** Everything currently published in the bundle, oldest first. */
  published(): CAGeneration[] {
    if (!this.state) return [];
    const now = this.o.clock.now();
    const all = [...this.state.retired, this.state.active, ...(this.state.next ? [this.state.next] : [])];
    return all.filter((g) => g.notAfter > now).sort((a, b) => a.notBefore - b.notBefore);
  }

  close(): void {
    this.closed = true;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
  }

  /** Waits for a running rotation to finish (tests use it after advancing the clock). */
  idle(): Promise<void> {
    return this.running;
  }

  private tick(notify = true): Promise<void> {
    const run = this.running.then(() => this.rotate(notify));
    this.running = run.catch((err: unknown) => {
      this.o.log.error({ [F.error]: String(err) }, 'Embedded CA rotation failed; retrying in 30s');
      this.schedule(this.o.clock.now() + 30_000);
    });
    return run;
  }

  private async rotate(notify: boolean): Promise<void> {
    if (this.closed) return;
    const now = this.o.clock.now();
    let state = this.state;
    let changed = false;
    for (let i = 0; i < 8; i++) {
      const step = rotationStep(state?.active, state?.next, now);
      if (step === 'none') break;
      changed = true;
      if (step === 'create-active') {
        const g = await this.create(now);
        state = { active: g, next: undefined, retired: state ? [...state.retired, state.active] : [] };
        this.o.log.info({ serial: g.serial, [F.expiresAt]: new Date(g.notAfter).toISOString() }, 'Created embedded CA');
      } else if (step === 'prepare' && state) {
        const g = await this.create(now);
        state = { ...state, next: g };
        this.o.log.info({ serial: g.serial }, 'Prepared next embedded CA and JWT key; published in the bundle');
      } else if (step === 'discard-next' && state?.next) {
        this.o.log.warn({ serial: state.next.serial }, 'The clock went back before the next embedded CA became valid; discarding it');
        state = { ...state, next: undefined };
      } else if (step === 'activate' && state?.next) {
        state = { active: state.next, next: undefined, retired: [...state.retired, state.active] };
        this.o.log.info({ serial: state.active.serial, kid: state.active.jwt.kid }, 'Activated next embedded CA and JWT key');
      }
    }
    if (!state) return; // unreachable: create-active always yields a state
    const before = state.retired.length;
    state = { ...state, retired: state.retired.filter((g) => g.notAfter > now) };
    if (state.retired.length !== before) changed = true;
    if (changed) {
      await this.store.save(state);
      this.state = state;
      if (notify && !this.closed) this.o.onChange();
    }
    this.schedule(nextCheckAt(state.active, state.next, state.retired));
  }

  private create(now: number): Promise<CAGeneration> {
    return createGeneration({
      trustDomain: this.o.trustDomain,
      subject: this.o.subject,
      caKeyType: this.o.caKeyType,
      jwtKeyType: this.o.jwtKeyType,
      now,
      ttlMs: this.o.caTtlMs,
    });
  }

  private schedule(at: number): void {
    if (this.closed) return;
    this.cancelTimer?.();
    this.cancelTimer = setWallTimer(this.o.clock, at, () => {
      this.cancelTimer = undefined;
      void this.tick().catch(() => {});
    });
  }
}
