/**
 * data_dir/agent-data.json in spire-agent v1.13.3's own format (pkg/agent/storage), so a
 * data_dir moves between spire-agent and spiffe-agent in both directions:
 *
 *   {"svid":[<b64 of PEM>...]|null,"bundle":[...]|null,"reattestable":false,
 *    "bootstrap_use":0,"bootstrap_start_time":"0001-01-01T00:00:00Z","connection_attempts":0}
 *
 * Each certificate is one PEM block; Go encodes the []byte as standard base64 and a nil
 * slice as null. Every write replaces the whole file atomically with mode 0600.
 */
import { join } from 'node:path';
import { JSONParseError, parseJSON } from '../../parse/json.js';
import { readFileIfExists, writeFileAtomic } from '../../storage/atomic-file.js';
import { pemDecode, pemEncodeCertificates } from '../../svid/der.js';
import { SessionError } from './session-errors.js';

export const AGENT_DATA_FILE = 'agent-data.json';
/** Go's zero time.Time, as encoding/json writes it. */
const GO_ZERO_TIME = '0001-01-01T00:00:00Z';

export interface BootstrapState {
  readonly use: number;
  /** Epoch ms; 0 = Go's zero time. */
  readonly startTime: number;
  readonly connectionAttempts: number;
}

interface Data {
  svid: readonly Uint8Array[];
  bundle: readonly Uint8Array[];
  reattestable: boolean;
  bootstrap: BootstrapState;
}

const EMPTY: Data = Object.freeze({ svid: [], bundle: [], reattestable: false, bootstrap: { use: 0, startTime: 0, connectionAttempts: 0 } });

export class AgentStorage {
  private data: Data = EMPTY;

  private constructor(readonly path: string) {}

  /** Opens data_dir's agent-data.json; a missing file is an empty store, a malformed one an error naming it. */
  static async open(dataDir: string): Promise<AgentStorage> {
    const s = new AgentStorage(join(dataDir, AGENT_DATA_FILE));
    const raw = await readFileIfExists(s.path);
    if (raw !== undefined) s.data = decodeAgentData(raw.toString('utf8'), s.path);
    return s;
  }

  svid(): { chain: readonly Uint8Array[]; reattestable: boolean } {
    return { chain: this.data.svid, reattestable: this.data.reattestable };
  }

  bundle(): readonly Uint8Array[] {
    return this.data.bundle;
  }

  bootstrapState(): BootstrapState {
    return this.data.bootstrap;
  }

  storeSVID(chain: readonly Uint8Array[], reattestable: boolean): Promise<void> {
    return this.write({ ...this.data, svid: [...chain], reattestable });
  }

  deleteSVID(): Promise<void> {
    return this.write({ ...this.data, svid: [], reattestable: false });
  }

  storeBundle(certs: readonly Uint8Array[]): Promise<void> {
    return this.write({ ...this.data, bundle: [...certs] });
  }

  storeBootstrapState(state: BootstrapState): Promise<void> {
    return this.write({ ...this.data, bootstrap: { ...state } });
  }

  private async write(next: Data): Promise<void> {
    await writeFileAtomic(this.path, encodeAgentData(next), 0o600);
    this.data = next;
  }
}

export function encodeAgentData(d: Data): string {
  const certs = (list: readonly Uint8Array[]) =>
    list.length === 0 ? null : list.map((der) => Buffer.from(pemEncodeCertificates([der]), 'utf8').toString('base64'));
  // Key order and spacing as Go's json.Marshal writes them.
  return JSON.stringify({
    svid: certs(d.svid),
    bundle: certs(d.bundle),
    reattestable: d.reattestable,
    bootstrap_use: d.bootstrap.use,
    bootstrap_start_time: formatGoTime(d.bootstrap.startTime),
    connection_attempts: d.bootstrap.connectionAttempts,
  });
}

export function decodeAgentData(text: string, path: string): Data {
  const bad = (what: string, cause?: unknown) =>
    new SessionError('storage_corrupt', `storage: ${path}: ${what}; restore it from a backup or remove it to attest again`, { cause });
  // Problems name the field, never its value: the path may lead (by a symlink) to another file.
  let doc: unknown;
  try {
    doc = parseJSON(text).value;
  } catch (err) {
    if (!(err instanceof JSONParseError)) throw err;
    throw bad(`not valid JSON at ${err.detail}`, err);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw bad('expected a JSON object');
  // Go matches keys case-insensitively; spire-agent writes them lower-case, so accept any case.
  const o = new Map(Object.entries(doc as Record<string, unknown>).map(([k, v]) => [k.toLowerCase(), v]));
  const certs = (key: string): Uint8Array[] => {
    const v = o.get(key);
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw bad(`"${key}" must be an array of base64 PEM certificates`);
    return v.map((item, i) => {
      if (typeof item !== 'string') throw bad(`"${key}"[${i}] must be a base64 string`);
      try {
        const ders = pemDecode(Buffer.from(item, 'base64'), 'CERTIFICATE');
        if (ders.length === 0) throw new Error('no PEM block');
        return ders[0] as Uint8Array;
      } catch (err) {
        throw bad(`"${key}"[${i}] is not a base64-encoded PEM certificate`, err);
      }
    });
  };
  const int = (key: string): number => {
    const v = o.get(key);
    if (v === undefined || v === null) return 0;
    if (typeof v !== 'number' || !Number.isInteger(v)) throw bad(`"${key}" must be an integer`);
    return v;
  };
  const reattestable = o.get('reattestable');
  if (reattestable !== undefined && reattestable !== null && typeof reattestable !== 'boolean') throw bad('"reattestable" must be a boolean');
  const start = o.get('bootstrap_start_time');
  let startTime = 0;
  if (start !== undefined && start !== null) {
    if (typeof start !== 'string') throw bad('"bootstrap_start_time" must be an RFC 3339 time');
    startTime = parseGoTime(start);
    if (Number.isNaN(startTime)) throw bad('"bootstrap_start_time" is not an RFC 3339 time');
  }
  return {
    svid: certs('svid'),
    bundle: certs('bundle'),
    reattestable: reattestable === true,
    bootstrap: { use: int('bootstrap_use'), startTime, connectionAttempts: int('connection_attempts') },
  };
}

/** Go's RFC3339Nano as time.Time.MarshalJSON writes a UTC time (trailing zeros dropped). */
export function formatGoTime(ms: number): string {
  if (ms === 0) return GO_ZERO_TIME;
  return new Date(ms).toISOString().replace(/\.?0+Z$/, 'Z').replace(/\.Z$/, 'Z');
}

/** Epoch ms; 0 for Go's zero time; NaN when unparsable. Sub-millisecond digits are dropped. */
export function parseGoTime(s: string): number {
  if (s.startsWith('0001-01-01T00:00:00')) return 0;
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.exec(s);
  if (!m) return NaN;
  const frac = (m[2] ?? '').slice(0, 4);
  return Date.parse(`${m[1]}${frac}${m[3]}`);
}
