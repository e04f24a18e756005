/**
 * Lines whose fields the agent builds itself (strings, numbers, booleans, arrays of strings), written
 * without pino: the audit record, one per Workload API decision, is the one log line on every
 * connection's path, and pino's JSON serialisation, its redaction and, for text output, parsing that
 * JSON back cost more than the rest of the line's work (issue 19's profile). The line is the one pino
 * would write for the same call, in both formats: test/unit/telemetry/plain-line.test.ts compares them.
 */

export type PlainValue = string | number | boolean | readonly string[];
export type PlainFields = Readonly<Record<string, PlainValue | undefined>>;
export type PlainLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

// pino's numbers, and logrus's names, which spire-agent prints: "warning", not "warn".
const LEVEL_NUMBER: Record<PlainLevel, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50 };
export const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARNING', 50: 'ERROR', 60: 'FATAL' };

/** One line, kept as its parts until written, so a batched line is formatted after the turn's work. */
export class PlainLine {
  constructor(
    readonly level: PlainLevel,
    readonly time: number,
    readonly bindings: PlainFields,
    readonly fields: PlainFields,
    readonly msg: string,
    /** Top-level keys written as "[redacted]", as pino's redact paths would. */
    readonly redact: ReadonlySet<string>,
  ) {}

  json(): string {
    let s = `{"level":${JSON.stringify(this.level === 'warn' ? 'warning' : this.level)},"time":${this.time}`;
    s += this.jsonFields(this.bindings) + this.jsonFields(this.fields);
    return `${s},"msg":${JSON.stringify(this.msg)}}\n`;
  }

  /** logrus's text shape, as textLine in logger.ts writes it from pino's JSON. */
  text(): string {
    let s = `time="${new Date(this.time).toISOString()}" level=${LEVEL_NAMES[LEVEL_NUMBER[this.level]]!.toLowerCase()} msg=${JSON.stringify(this.msg)}`;
    s += this.textFields(this.bindings) + this.textFields(this.fields);
    return `${s}\n`;
  }

  private value(key: string, v: PlainValue): PlainValue {
    return this.redact.has(key) ? '[redacted]' : v;
  }

  private jsonFields(f: PlainFields): string {
    let s = '';
    for (const k in f) {
      const v = f[k];
      if (v !== undefined) s += `,${JSON.stringify(k)}:${JSON.stringify(this.value(k, v))}`;
    }
    return s;
  }

  private textFields(f: PlainFields): string {
    let s = '';
    for (const k in f) {
      const v = f[k];
      if (v === undefined) continue;
      const r = this.value(k, v);
      const t = typeof r === 'string' ? r : JSON.stringify(r);
      s += ` ${k}=${t === '' || /[\s"=]/.test(t) ? JSON.stringify(t) : t}`;
    }
    return s;
  }
}

export function levelNumber(level: PlainLevel): number {
  return LEVEL_NUMBER[level];
}
