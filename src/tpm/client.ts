/**
 * One TPM, one command at a time. The client sends commands through a transport, retries the ones
 * the TPM asks to have sent again, turns response codes into errors (explain.ts), and keeps track
 * of the objects and sessions it created: without a resource manager (swtpm, /dev/tpm0) they stay
 * in the TPM's few slots after we leave, so `close()` flushes whatever the caller did not.
 */
import { systemClock, type Clock } from '../clock.js';
import type { Logger } from '../telemetry/logger.js';
import { propertiesCommand } from './commands/capability.js';
import { flushContextCommand } from './commands/flush.js';
import { HT, PT, SESSION_ATTR, commandName, handleType } from './constants.js';
import { TpmCommandError, TpmError } from './errors.js';
import { commandError } from './explain.js';
import { RC, decodeRC } from './rc.js';
import { openTransport } from './transport/open.js';
import type { TpmTransport } from './transport/types.js';
import { decodeResponse, encodeCommand, sessionsOf, type Command } from './wire.js';

export interface TpmClientOptions {
  readonly clock?: Clock;
  readonly log?: Logger;
  /**
   * Longest one command may take. RSA key generation in CreatePrimary takes tens of seconds on
   * slow discrete TPMs, and Linux allows a TPM up to minutes for it; 120 s leaves that room.
   */
  readonly timeoutMs?: number;
  /** Tries of a command the TPM answers with TPM_RC_RETRY, YIELDED or TESTING. */
  readonly attempts?: number;
  /** First wait before a retry; doubled each time, up to 500 ms (spire-agent waits 500 ms). */
  readonly retryDelayMs?: number;
}

export interface OpenOptions extends TpmClientOptions {
  /** Where to look for tpmrm<N>/tpm<N> when no path is given. */
  readonly devDir?: string;
}

/** Codes after which the TPM wants the same command again (Part 2: warnings). */
const RETRYABLE: readonly number[] = [RC.RETRY, RC.YIELDED, RC.TESTING];

export class TpmClient {
  private readonly clock: Clock;
  private readonly log: Logger | undefined;
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly retryDelayMs: number;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly live = new Set<number>();
  private closed = false;

  constructor(
    private readonly transport: TpmTransport,
    opts: TpmClientOptions = {},
  ) {
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log;
    this.timeoutMs = opts.timeoutMs ?? 120_000;
    this.attempts = opts.attempts ?? 10;
    this.retryDelayMs = opts.retryDelayMs ?? 10;
  }

  /**
   * Opens `path` (a TPM device or a simulator's socket), or the one TPM in /dev, and checks that
   * a TPM 2.0 answers there (as go-tpm's OpenTPM does, by asking for its manufacturer).
   */
  static async open(path: string | undefined, opts: OpenOptions = {}): Promise<TpmClient> {
    const client = new TpmClient(await openTransport(path, opts.devDir), opts);
    try {
      // GetCapability(TPM_PT_MANUFACTURER): any TPM 2.0 answers it.
      await client.run(propertiesCommand(PT.MANUFACTURER, 1));
    } catch (err) {
      await client.close();
      // A TPM 1.2 answers a TPM 2.0 command with a 1.2 code; any other error (a TPM 2.0 that was
      // not started, one in failure mode) is the TPM's own and says so.
      if (err instanceof TpmCommandError && err.rc.format === 'tpm-1.2') {
        throw new TpmError('tpm_device_unsupported', `tpm: ${client.description} does not answer as a TPM 2.0: ${err.message}`, { cause: err });
      }
      throw err;
    }
    return client;
  }

  get description(): string {
    return this.transport.description;
  }

  /** Objects and sessions this client created and has not flushed, oldest first. */
  get liveHandles(): readonly number[] {
    return [...this.live];
  }

  /** Runs one command after those already queued. */
  run<T>(cmd: Command<T>, signal?: AbortSignal): Promise<T> {
    const next = this.queue.then(() => this.execute(cmd, signal));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** TPM2_FlushContext: unloads an object or ends a session this client (or another) created. */
  async flush(handle: number, signal?: AbortSignal): Promise<void> {
    try {
      await this.run(flushContextCommand(handle), signal);
    } finally {
      // Gone either way: flushed, or the TPM says it is not there (a reset, another client).
      this.live.delete(handle);
    }
  }

  /** Flushes what the caller left loaded, newest first, then closes the transport. */
  async close(): Promise<void> {
    if (this.closed) return;
    for (const handle of [...this.live].reverse()) {
      try {
        await this.flush(handle);
      } catch (err) {
        this.log?.warn({ error: (err as Error).message }, `tpm: could not flush handle 0x${handle.toString(16)} on close`);
      }
    }
    this.closed = true;
    await this.transport.close();
  }

  private async execute<T>(cmd: Command<T>, signal: AbortSignal | undefined): Promise<T> {
    const name = commandName(cmd.spec.cc);
    if (this.closed) throw new TpmError('tpm_closed', `tpm: ${name}: the TPM client is closed`);
    const bytes = encodeCommand(cmd.spec);
    for (let attempt = 1; ; attempt++) {
      const decoded = decodeResponse(await this.exchange(bytes, cmd.spec.cc, signal), cmd.spec);
      if (!decoded.ok) {
        const base = decodeRC(decoded.rc).base;
        if (RETRYABLE.includes(base) && attempt < this.attempts) {
          const delay = Math.min(this.retryDelayMs * 2 ** (attempt - 1), 500);
          this.log?.debug({ attempt }, `tpm: ${name} answered ${decodeRC(decoded.rc).name}; sending it again in ${delay} ms`);
          await this.sleep(delay, signal);
          continue;
        }
        throw commandError(cmd.spec, decoded.rc);
      }
      const { response } = decoded;
      for (const h of response.handles) this.live.add(h);
      for (const s of sessionsOf(cmd.spec)) {
        // A session without continueSession ends with the command that used it.
        const t = handleType(s.session);
        if ((t === HT.POLICY_SESSION || t === HT.HMAC_SESSION) && !(s.attributes & SESSION_ATTR.continueSession)) this.live.delete(s.session);
      }
      return cmd.parse(response);
    }
  }

  private exchange(bytes: Buffer, cc: number, signal: AbortSignal | undefined): Promise<Buffer> {
    const ctl = new AbortController();
    const name = commandName(cc);
    const cancel = this.clock.setTimer(this.timeoutMs, () => ctl.abort(new TpmError('tpm_timeout', `tpm: ${name} got no answer from ${this.description} within ${this.timeoutMs} ms`)));
    const onAbort = (): void => ctl.abort(signal?.reason);
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    return this.transport.send(bytes, cc, ctl.signal).finally(() => {
      cancel();
      signal?.removeEventListener('abort', onAbort);
    });
  }

  private sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new TpmError('tpm_timeout', `tpm: abandoned while waiting to retry: ${String(signal.reason)}`));
      // The clock's timers are unref'd, and between two commands nothing else may hold the event
      // loop (a socket transport connects per command): an agent whose only work in flight is a
      // retried TPM2_Certify would exit (code 13, unsettled await) in the middle of attesting.
      const hold = setInterval(() => undefined, 1 << 30);
      this.clock.setTimer(ms, () => {
        clearInterval(hold);
        resolve();
      });
    });
  }
}
