/**
 * `logger get|set|reset` (spire-agent v1.15's verbs; v1.13.3 has none): the admin socket's
 * Logger API, printed as spire-agent v1.15 prints it (logrus level names), or as protojson.
 */
import type { Command } from '../flags.js';
import { callAdmin, protoJSON, rpcErrorText, runAdminCommand, type AdminCommand } from './admin-common.js';

/** spire.api.types.LogLevel → logrus's MarshalText name, which spire-agent prints. */
const LOGRUS_NAME: Readonly<Record<string, string>> = {
  PANIC: 'panic',
  FATAL: 'fatal',
  ERROR: 'error',
  WARN: 'warning',
  INFO: 'info',
  DEBUG: 'debug',
  TRACE: 'trace',
};

/** logrus.ParseLevel's names (lower-cased input) → spire.api.types.LogLevel. */
const API_LEVEL: Readonly<Record<string, string>> = {
  panic: 'PANIC',
  fatal: 'FATAL',
  error: 'ERROR',
  warn: 'WARN',
  warning: 'WARN',
  info: 'INFO',
  debug: 'DEBUG',
  trace: 'TRACE',
};

export function prettyLogger(r: Record<string, unknown>): string {
  const name = (v: unknown): string => {
    const n = LOGRUS_NAME[String(v)];
    if (!n) throw new Error('internal error: returned log level is undefined; please report this as a bug');
    return n;
  };
  return `Logger Level : ${name(r['current_level'])}\nLaunch Level : ${name(r['launch_level'])}\n\n`;
}

function loggerCommand(name: string, method: string, failure: string, request: (v: Record<string, unknown>) => object, flags: AdminCommand['flags'] = []): Command {
  return (args, io) =>
    runAdminCommand(
      {
        name,
        flags,
        run: async ({ socketPath, values, format, io: out }) => {
          const req = request(values);
          let resp: Record<string, unknown>;
          try {
            resp = await callAdmin(socketPath, 'Logger', method, req);
          } catch (err) {
            throw new Error(`${failure}: ${rpcErrorText(err)}`);
          }
          out.stdout.write(format === 'json' ? protoJSON(resp) : prettyLogger(resp));
        },
      },
      args,
      io,
    );
}

export const get = loggerCommand('logger get', 'GetLogger', 'error fetching logger', () => ({}));

export const set = loggerCommand(
  'logger set',
  'SetLogLevel',
  'failed to set log level',
  (v) => {
    const raw = String(v['level'] ?? '');
    if (raw === '') throw new Error('a value (-level) must be set');
    const level = API_LEVEL[raw.toLowerCase()];
    if (!level) throw new Error(`the value ${JSON.stringify(raw)} is not a valid setting`);
    return { new_level: level };
  },
  [{ name: 'level', kind: 'string', usage: 'The new log level, one of (panic, fatal, error, warn, info, debug, trace)', default: '' }],
);

export const reset = loggerCommand('logger reset', 'ResetLogLevel', 'failed to reset logger', () => ({}));
