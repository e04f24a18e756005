/**
 * What spire-agent's `api *` verbs share: the -socketPath/-instance/-timeout/-output
 * flags, socket resolution, and Go's rendering of times, durations and JSON, so
 * scripts that parse spire-agent's output keep working.
 */
import { X509Certificate } from 'node:crypto';
import { formatUsage, HELP_FLAGS, parseFlags, UsageError, type CliIO, type FlagSpec, type FlagValues } from '../flags.js';
import { WorkloadAPIClient, WorkloadAPIError, parseAddress } from '../../sdk/index.js';

export const DEFAULT_SOCKET_PATH = '/tmp/spire-agent/public/api.sock';
export const DEFAULT_TIMEOUT_MS = 5_000;
const TEMPLATE_ENV = 'SPIRE_AGENT_PUBLIC_SOCKET_TEMPLATE';

export const SOCKET_FLAGS: readonly FlagSpec[] = [
  { name: 'socketPath', kind: 'string', usage: 'Path to the SPIRE Agent API Unix domain socket', default: DEFAULT_SOCKET_PATH },
  { name: 'instance', kind: 'string', usage: `Instance name to substitute into socket templates (env ${TEMPLATE_ENV}).`, default: '' },
];
export const TIMEOUT_FLAG: FlagSpec = { name: 'timeout', kind: 'duration', usage: 'Time to wait for a response', default: '5s', typeName: 'value' };
export const OUTPUT_FLAG: FlagSpec = { name: 'output', kind: 'string', usage: 'Desired output format (pretty, json); default: pretty.', default: '', typeName: 'value' };

export type OutputFormat = 'pretty' | 'json';

/**
 * Go's flag package answers -h with the usage text; parseFlags does not know -h.
 * Returns undefined after printing usage or a usage error (exit code in `code`).
 */
export function parseCommandFlags(
  command: string,
  args: readonly string[],
  specs: readonly FlagSpec[],
  io: CliIO,
): { values: FlagValues; code?: undefined } | { values?: undefined; code: number } {
  if (args.some((a) => HELP_FLAGS.includes(a) || a === '--h')) {
    io.stderr.write(formatUsage(command, specs));
    return { code: 0 };
  }
  try {
    const { values } = parseFlags(args, specs);
    return { values };
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr.write(`${err.message}\n${formatUsage(command, specs)}`);
    return { code: 1 };
  }
}

export function outputFormat(values: FlagValues, ...names: string[]): OutputFormat {
  let chosen: string | undefined;
  for (const n of names) {
    const v = values[n];
    if (typeof v !== 'string' || v === '') continue;
    if (chosen !== undefined && chosen !== v) throw new UsageError(`the output format has already been set to "${chosen}"`);
    chosen = v;
  }
  if (chosen === undefined || chosen === 'pretty') return 'pretty';
  if (chosen === 'json') return 'json';
  throw new UsageError(`bad formatter flag: unknown format type: "${chosen}"`);
}

/**
 * spire-agent's order: an explicit -socketPath, then the -instance template, then
 * SPIRE_AGENT_PUBLIC_SOCKET, then SPIFFE_ENDPOINT_SOCKET (a URI), then the default.
 */
export function resolveSocket(values: FlagValues, env: NodeJS.ProcessEnv): string {
  const flag = String(values['socketPath'] ?? DEFAULT_SOCKET_PATH);
  const instance = String(values['instance'] ?? '');
  const tpl = env[TEMPLATE_ENV] ?? '';
  if (instance !== '') {
    if (tpl === '') throw new UsageError(` ${TEMPLATE_ENV} environment variable must be defined when using the instance flag`);
    if (!tpl.includes('%i')) throw new UsageError(`failed to find %i in ${TEMPLATE_ENV}`);
  }
  if (flag !== DEFAULT_SOCKET_PATH) return flag;
  if (instance !== '') return tpl.replaceAll('%i', instance);
  const spire = env['SPIRE_AGENT_PUBLIC_SOCKET'];
  if (spire) return spire;
  const spiffe = env['SPIFFE_ENDPOINT_SOCKET'];
  if (spiffe) return spiffe;
  return DEFAULT_SOCKET_PATH;
}

export function makeClient(socket: string): WorkloadAPIClient {
  // A relative -socketPath is taken from the working directory, as spire-agent does.
  const address = socket.includes('://') || socket.startsWith('/') ? socket : `${process.cwd()}/${socket}`;
  parseAddress(address);
  return new WorkloadAPIClient({ address });
}

/** The text spire-agent prints for an error: a gRPC status reads `rpc error: code = X desc = Y`. */
export function errorText(err: unknown): string {
  if (err instanceof WorkloadAPIError) return err.grpcMessage;
  return err instanceof Error ? err.message : String(err);
}

export function println(out: NodeJS.WritableStream, ...parts: string[]): void {
  out.write(parts.join(' ') + '\n');
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** Go's `%v` of a UTC time.Time: `2006-01-02 15:04:05 +0000 UTC`. */
export function goTime(d: Date): string {
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000 UTC`;
}

/** Go's encoding/json: map keys sorted, `<`, `>`, `&` escaped, one value per line. */
export function goJSON(value: unknown): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, sort((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  return JSON.stringify(sort(value)).replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`) + '\n';
}

/** protojson's view of bytes fields: standard base64. Applied to Buffers anywhere in a message. */
export function protoToJSON(msg: unknown): unknown {
  if (Buffer.isBuffer(msg) || msg instanceof Uint8Array) return Buffer.from(msg).toString('base64');
  if (Array.isArray(msg)) return msg.map(protoToJSON);
  if (msg && typeof msg === 'object') {
    return Object.fromEntries(Object.entries(msg).map(([k, v]) => [k, protoToJSON(v)]));
  }
  return msg;
}

export interface CertDates {
  notBefore: Date;
  notAfter: Date;
  serial: string;
}

/** Validity and (decimal, like SPIRE's logs) serial of one DER certificate. */
export function certDates(der: Uint8Array): CertDates {
  const c = new X509Certificate(der);
  return { notBefore: new Date(c.validFrom), notAfter: new Date(c.validTo), serial: BigInt(`0x${c.serialNumber}`).toString(10) };
}
