import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino';
import { createWriteStream } from 'node:fs';
import { LEVEL_NAMES, PlainLine, type PlainFields, type PlainLevel } from './plain-line.js';

/** The logger every component receives. Field names come from ./names.ts. */
export interface Logger {
  child(bindings: Record<string, unknown>): Logger;
  trace(obj: Record<string, unknown> | string, msg?: string): void;
  debug(obj: Record<string, unknown> | string, msg?: string): void;
  info(obj: Record<string, unknown> | string, msg?: string): void;
  warn(obj: Record<string, unknown> | string, msg?: string): void;
  error(obj: Record<string, unknown> | string, msg?: string): void;
  /**
   * The same line as info()/warn()/... would write, for fields the agent builds itself (strings,
   * numbers, booleans, arrays of strings), formatted without pino (see plain-line.ts). Absent where
   * that shortcut is not offered (log_source_location, test loggers): callers fall back to the level methods.
   */
  plain?(level: PlainLevel, fields: PlainFields, msg: string): void;
}

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';

export interface LoggerOptions {
  /** fatal and panic (log_level as logrus reads it) silence every line but the audit trail. */
  level: RuntimeLogLevel;
  format: LogFormat;
  /** Append to this file instead of stderr. */
  file?: string | undefined;
  /** Where text/json goes when no file is set (tests pass a stream). */
  destination?: NodeJS.WritableStream | undefined;
  /** log_source_location: add logrus's ReportCaller fields `func` and `file` (path:line) to every line. */
  sourceLocation?: boolean | undefined;
  /**
   * Write the lines of one event-loop turn together, formatted after the turn's work (the daemon:
   * an audit record per connection would otherwise cost a write(2) and its text formatting inside
   * the request). Same lines, same order; they are flushed at the latest when the process exits.
   */
  batch?: boolean | undefined;
}

/** Frames of the logging machinery itself, skipped to find who logged. */
const OWN_FRAMES = /[/\\]node_modules[/\\]pino[/\\]|[/\\]telemetry[/\\]logger\.[jt]s:/;

/**
 * The first stack frame outside pino and this module, as logrus's caller fields. A stack is
 * captured for every line, so this runs only when the operator asked for it.
 */
export function callerFields(stack: string | undefined): Record<string, string> {
  for (const line of (stack ?? '').split('\n').slice(1)) {
    if (OWN_FRAMES.test(line)) continue;
    const m = /^\s*at (?:(.*?) \()?(?:file:\/\/)?(.+?):(\d+):\d+\)?$/.exec(line);
    if (!m) continue;
    return { func: m[1] ?? '<anonymous>', file: `${m[2]}:${m[3]}` };
  }
  return {};
}

/** Keys that must never reach a log line whatever a caller passes. */
const REDACT = ['privateKey', 'private_key', 'key', 'token', 'svid', 'jwt', 'joinToken', 'join_token', '*.privateKey', '*.token', '*.svid'];

/** The REDACT paths that can apply to a plain line: its values are never objects, so only top-level keys. */
const REDACT_TOP: ReadonlySet<string> = new Set(REDACT.filter((k) => !k.includes('.')));

/**
 * Text output follows spire-agent's logrus text shape closely enough that operators'
 * grep habits carry over: time="..." level=info msg="..." key=value ...
 */
function textStream(out: NodeJS.WritableStream): DestinationStream {
  return { write: (line: string) => out.write(textLine(line)) };
}

function textLine(line: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { time, level, msg, ...rest } = rec;
  const parts = [
    `time="${new Date(Number(time)).toISOString()}"`,
    `level=${(LEVEL_NAMES[Number(level)] ?? String(level)).toLowerCase()}`,
    `msg=${JSON.stringify(String(msg ?? ''))}`,
  ];
  for (const [k, v] of Object.entries(rest)) {
    const s = typeof v === 'string' ? v : JSON.stringify(v);
    parts.push(`${k}=${/[\s"=]/.test(s) || s === '' ? JSON.stringify(s) : s}`);
  }
  return parts.join(' ') + '\n';
}

/** Above this many pending characters a batch is written at once, so a burst of lines stays bounded in memory. */
const BATCH_MAX_CHARS = 64 * 1024;

/**
 * pino's lines of one event-loop turn, formatted and written in one write after the turn's work
 * (setImmediate): the formatting and the write(2) leave the request path, and a turn serving many
 * connections writes once. A class, so the pending lines are fields, not closures per line.
 */
class BatchedLines implements DestinationStream {
  private pending: (string | PlainLine)[] = [];
  private chars = 0;
  private scheduled: NodeJS.Immediate | undefined;

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly format: ((line: string) => string) | undefined,
  ) {}

  write(line: string): void {
    this.pending.push(line);
    this.add(line.length);
  }

  /** A plain line, formatted at flush like the others. */
  plain(line: PlainLine): void {
    this.pending.push(line);
    // Its length is not known before formatting; about what an audit record takes.
    this.add(256);
  }

  private add(chars: number): void {
    this.chars += chars;
    if (this.chars >= BATCH_MAX_CHARS) this.flush();
    else this.scheduled ??= setImmediate(this.flush);
  }

  private formatted(l: string | PlainLine): string {
    if (typeof l !== 'string') return this.format ? l.text() : l.json();
    return this.format ? this.format(l) : l;
  }

  readonly flush = (): void => {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    if (this.pending.length === 0) return;
    const lines = this.pending;
    this.pending = [];
    this.chars = 0;
    let text = '';
    for (const l of lines) text += this.formatted(l);
    this.out.write(text);
  };
}

/**
 * Levels the Logger API can set at run time: the configurable ones plus logrus's fatal and panic,
 * which spire-agent's Logger API reports back by name. Our Logger writes nothing above error, so
 * both silence every line but the audit trail; panic is kept apart only so it reads back as PANIC.
 */
export type RuntimeLogLevel = LogLevel | 'fatal' | 'panic';

/** Changes the level of a logger and every child made from it, while the agent runs. */
export interface LevelControl {
  get(): RuntimeLogLevel;
  /** The level the logger was created with. */
  readonly launch: RuntimeLogLevel;
  set(level: RuntimeLogLevel): void;
  reset(): void;
}

export function createLogger(opts: LoggerOptions): Logger {
  return createControlledLogger(opts).log;
}

/**
 * `log` follows `level`, which the admin Logger API can change at run time. `audit` writes to
 * the same place but is not affected by it, and writes at info and above whatever the level:
 * whoever can reach the Logger API must not be able to switch the audit trail off.
 */
export function createControlledLogger(opts: LoggerOptions): { log: Logger; level: LevelControl; audit: Logger; flush: () => void } {
  const out: NodeJS.WritableStream = opts.file
    ? createWriteStream(opts.file, { flags: 'a', mode: 0o640 })
    : (opts.destination ?? process.stderr);
  const batch = opts.batch ? new BatchedLines(out, opts.format === 'json' ? undefined : textLine) : undefined;
  // A process that exits before the next turn (a second SIGTERM) still writes what is pending.
  if (batch) process.once('exit', batch.flush);
  const dest: DestinationStream = batch ?? (opts.format === 'json' ? (out as unknown as DestinationStream) : textStream(out));
  const make = (level: RuntimeLogLevel): PinoLogger =>
    pino(
      {
        // pino has no panic level: it runs at fatal (see `named`).
        level: level === 'panic' ? 'fatal' : level,
        base: undefined,
        redact: { paths: REDACT, censor: '[redacted]' },
        formatters: opts.format === 'json' ? { level: (label) => ({ level: label === 'warn' ? 'warning' : label }) } : {},
        ...(opts.sourceLocation ? { mixin: () => callerFields(new Error().stack) } : {}),
      },
      dest,
    );
  const p = make(opts.level);
  const auditRoot = make(opts.level === 'trace' || opts.level === 'debug' ? opts.level : 'info');
  // pino children read the root's level unless given their own, so one assignment covers all.
  // pino has no panic level; `named` remembers which of the two was asked for while pino runs at fatal.
  let named: RuntimeLogLevel = opts.level;
  const level: LevelControl = {
    launch: opts.level,
    get: () => named,
    set: (l) => {
      p.level = l === 'panic' ? 'fatal' : l;
      named = l;
    },
    reset: () => {
      p.level = opts.level === 'panic' ? 'fatal' : opts.level;
      named = opts.level;
    },
  };
  // Plain lines go where pino's go, formatted as pino's would be; not with log_source_location, whose
  // caller fields come from pino's mixin.
  const json = opts.format === 'json';
  const emit = opts.sourceLocation ? undefined : batch ? (l: PlainLine) => batch.plain(l) : (l: PlainLine) => out.write(json ? l.json() : l.text());
  const plainRoot = emit ? { emit, bindings: {} } : undefined;
  return { log: wrap(p, plainRoot), level, audit: wrap(auditRoot, plainRoot), flush: batch?.flush ?? noFlush };
}

function noFlush(): void {}

interface PlainContext {
  readonly emit: (line: PlainLine) => void;
  readonly bindings: PlainFields;
}

/** Whether bindings can be written by PlainLine (no objects, errors, or arrays of other things). */
function plainBindings(b: Record<string, unknown>): b is PlainFields {
  for (const k in b) {
    const v = b[k];
    const t = typeof v;
    if (t === 'string' || t === 'number' || t === 'boolean' || v === undefined) continue;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) continue;
    return false;
  }
  return true;
}

function wrap(p: PinoLogger, plain: PlainContext | undefined): Logger {
  const call =
    (fn: 'trace' | 'debug' | 'info' | 'warn' | 'error') =>
    (obj: Record<string, unknown> | string, msg?: string): void => {
      if (typeof obj === 'string') p[fn](obj);
      else p[fn](obj, msg);
    };
  return {
    child: (b) => wrap(p.child(b), plain && plainBindings(b) ? { emit: plain.emit, bindings: { ...plain.bindings, ...b } } : undefined),
    trace: call('trace'),
    debug: call('debug'),
    info: call('info'),
    warn: call('warn'),
    error: call('error'),
    ...(plain
      ? {
          plain: (level: PlainLevel, fields: PlainFields, msg: string): void => {
            if (p.isLevelEnabled(level)) plain.emit(new PlainLine(level, Date.now(), plain.bindings, fields, msg, REDACT_TOP));
          },
        }
      : {}),
  };
}

/** A logger that drops everything (SDK default, and tests that do not look at logs). */
export const nullLogger: Logger = {
  child: () => nullLogger,
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
};
