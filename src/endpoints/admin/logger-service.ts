/** spire-agent's Logger API: read, change and reset the daemon's log level at run time. */
import * as grpc from '@grpc/grpc-js';
import type { LevelControl, RuntimeLogLevel } from '../../telemetry/logger.js';
import type { Logger } from '../../telemetry/logger.js';
import { StatusError, toServiceError } from '../status.js';

/** spire.api.types.LogLevel names ↔ our levels, one to one as spire-agent v1.15 maps them to logrus's. */
const TO_RUNTIME: Readonly<Record<string, RuntimeLogLevel>> = {
  PANIC: 'panic',
  FATAL: 'fatal',
  ERROR: 'error',
  WARN: 'warn',
  INFO: 'info',
  DEBUG: 'debug',
  TRACE: 'trace',
};
const TO_PROTO: Readonly<Record<RuntimeLogLevel, string>> = {
  panic: 'PANIC',
  fatal: 'FATAL',
  error: 'ERROR',
  warn: 'WARN',
  info: 'INFO',
  debug: 'DEBUG',
  trace: 'TRACE',
};

export function toRuntimeLevel(name: unknown): RuntimeLogLevel {
  const level = typeof name === 'string' ? TO_RUNTIME[name] : undefined;
  if (!level) throw new StatusError(grpc.status.INVALID_ARGUMENT, `newLevel value cannot be ${String(name ?? 'UNSPECIFIED')}`);
  return level;
}

export class LoggerHandler {
  constructor(
    private readonly level: LevelControl,
    private readonly log: Logger,
  ) {}

  private current(): Record<string, unknown> {
    return { current_level: TO_PROTO[this.level.get()], launch_level: TO_PROTO[this.level.launch] };
  }

  service(): grpc.UntypedServiceImplementation {
    const unary =
      (fn: (req: Record<string, unknown>) => void) =>
      (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>): void => {
        try {
          fn((call.request ?? {}) as Record<string, unknown>);
          cb(null, this.current());
        } catch (err) {
          cb(toServiceError(err) as grpc.ServiceError);
        }
      };
    return {
      GetLogger: unary(() => {}),
      SetLogLevel: unary((req) => {
        const next = toRuntimeLevel(req.new_level);
        // Logged at warn so the change is visible at any level but the most restrictive.
        this.log.warn({ from: this.level.get(), to: next }, 'Log level changed through the Logger API');
        this.level.set(next);
      }),
      ResetLogLevel: unary(() => {
        this.log.warn({ from: this.level.get(), to: this.level.launch }, 'Log level reset through the Logger API');
        this.level.reset();
      }),
    };
  }
}
