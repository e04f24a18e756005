/**
 * What the admin-socket verbs (`debug getinfo`, `logger get|set|reset`) share, shaped like
 * spire-agent v1.15's cmd/spire-agent/util Adapter: one -socketPath flag for the admin socket,
 * `-output pretty|json`, errors printed as `Error: ...` on stderr with exit 1, and JSON as
 * protojson (proto field names, unpopulated fields emitted, int64 as strings, nulls dropped,
 * keys sorted as Go's encoding/json sorts a map).
 */
import * as grpc from '@grpc/grpc-js';
import { loadProto } from '../../endpoints/proto.js';
import { GRPC_CODE_NAMES } from '../../sdk/errors.js';
import { formatUsage, HELP_FLAGS, parseFlags, UsageError, type CliIO, type FlagSpec, type FlagValues } from '../flags.js';
import { goJSON, OUTPUT_FLAG, outputFormat, type OutputFormat } from './api-common.js';

export const DEFAULT_ADMIN_SOCKET_PATH = '/tmp/spire-agent/private/admin.sock';

export const ADMIN_SOCKET_FLAG: FlagSpec = { name: 'socketPath', kind: 'string', usage: 'Path to the SPIRE Agent admin API socket', default: DEFAULT_ADMIN_SOCKET_PATH };

/**
 * spire-agent sets no deadline on these calls; one bounds them here so a wedged agent cannot hang
 * a script forever. Generous: the calls are local and answer in milliseconds.
 */
const CALL_TIMEOUT_MS = 30_000;

type Unary = (req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Record<string, unknown>) => void) => void;

/** The admin socket's services this CLI calls, by proto file and package path. */
const SERVICES = {
  Debug: ['spire/api/agent/debug/v1/debug.proto', ['spire', 'agent', 'debug', 'v1']],
  Logger: ['spire/api/agent/logger/v1/logger.proto', ['spire', 'api', 'agent', 'logger', 'v1']],
} as const;

export type AdminService = keyof typeof SERVICES;

/** One unary call on the admin socket; the response in proto-loader's object form (int64 as strings, enums as names). */
export async function callAdmin(socketPath: string, service: AdminService, method: string, req: object): Promise<Record<string, unknown>> {
  const [file, path] = SERVICES[service];
  let ns = loadProto(file) as unknown as Record<string, unknown>;
  for (const part of path) ns = ns[part] as Record<string, unknown>;
  const Ctor = ns[service] as grpc.ServiceClientConstructor;
  // grpc-js takes `unix:` + path as written; a relative path is resolved from the working directory.
  const client = new Ctor(`unix:${socketPath}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & Record<string, Unary>;
  try {
    return await new Promise((resolve, reject) =>
      client[method]!.call(client, req, { deadline: Date.now() + CALL_TIMEOUT_MS }, (err, res) => (err ? reject(err) : resolve(res ?? {}))),
    );
  } finally {
    client.close();
  }
}

/** A gRPC failure as grpc-go prints it: `rpc error: code = Unavailable desc = ...`. */
export function rpcErrorText(err: unknown): string {
  const e = err as Partial<grpc.ServiceError>;
  if (typeof e?.code === 'number' && typeof e.details === 'string') {
    return `rpc error: code = ${GRPC_CODE_NAMES[e.code] ?? `Code(${e.code})`} desc = ${e.details}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** protojson after spire's cliprinter: null fields dropped (at any depth), then Go's sorted-key JSON. */
export function protoJSON(msg: unknown): string {
  const drop = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.filter((x) => x !== null && x !== undefined).map(drop);
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.entries(v)
          .filter(([, x]) => x !== null && x !== undefined)
          .map(([k, x]) => [k, drop(x)]),
      );
    }
    return v;
  };
  return goJSON(drop(msg));
}

export interface AdminCommand {
  /** As spire-agent names it in `Usage of <name>:`. */
  readonly name: string;
  /** Flags beyond -socketPath and -output. */
  readonly flags?: readonly FlagSpec[];
  /** The call and its printing; throws to print `Error: <message>` and exit 1. */
  readonly run: (ctx: { socketPath: string; values: FlagValues; format: OutputFormat; io: CliIO }) => Promise<void>;
}

/** Flag parsing, help and error printing as spire-agent's Adapter does them. */
export async function runAdminCommand(cmd: AdminCommand, args: readonly string[], io: CliIO): Promise<number> {
  const specs = [ADMIN_SOCKET_FLAG, ...(cmd.flags ?? []), OUTPUT_FLAG];
  if (args.some((a) => HELP_FLAGS.includes(a))) {
    // mitchellh/cli prints the Adapter's Help(): Go's usage, then the parse error it returns.
    io.stderr.write(`${formatUsage(cmd.name, specs)}flag: help requested\n`);
    return 0;
  }
  let values: FlagValues;
  let format: OutputFormat;
  try {
    ({ values } = parseFlags(args, specs));
    try {
      format = outputFormat(values, 'output');
    } catch (err) {
      // Go's flag package reports a flag.Value's Set error this way.
      throw new UsageError(`invalid value ${JSON.stringify(String(values['output']))} for flag -output: ${(err as Error).message}`);
    }
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr.write(`${err.message}\n${formatUsage(cmd.name, specs)}`);
    return 1;
  }
  const socketPath = String(values['socketPath'] || DEFAULT_ADMIN_SOCKET_PATH);
  try {
    await cmd.run({ socketPath, values, format, io });
    return 0;
  } catch (err) {
    io.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
