/** `api fetch x509`: one X509SVIDResponse from the Workload API, printed or written like spire-agent. */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command, FlagSpec } from '../flags.js';
import {
  BundleSet,
  X509Bundle,
  pemEncodeCertificates,
  pemEncodePrivateKey,
  splitDerCertificates,
  verifyX509SVID,
  SpiffeId,
  parseX509SVID,
} from '../../svid/index.js';
import type { RawX509SVIDResponse } from '../../sdk/proto.js';
import {
  OUTPUT_FLAG,
  SOCKET_FLAGS,
  TIMEOUT_FLAG,
  errorText,
  goJSON,
  makeClient,
  outputFormat,
  parseCommandFlags,
  protoToJSON,
  resolveSocket,
} from './api-common.js';
import { formatX509SVIDs, type PrintableSVID } from './api-x509-printer.js';

const SPECS: readonly FlagSpec[] = [
  ...SOCKET_FLAGS,
  TIMEOUT_FLAG,
  OUTPUT_FLAG,
  { name: 'silent', kind: 'bool', usage: 'Suppress stdout', default: false },
  { name: 'write', kind: 'string', usage: 'Write SVID data to the specified path (optional; only available for pretty output format)', default: '' },
];

interface ParsedSVID extends PrintableSVID {
  readonly key: Uint8Array;
}

/** The checks spire-agent applies before printing: parseable, key matches, chain verifies against the bundle. */
export async function parseAndValidate(resp: RawX509SVIDResponse): Promise<ParsedSVID[]> {
  if (resp.svids.length === 0) throw new Error('workload response contains no svids');
  const federated: [string, Uint8Array[]][] = [];
  for (const key of Object.keys(resp.federated_bundles).sort()) {
    let certs: Uint8Array[];
    try {
      certs = splitDerCertificates(resp.federated_bundles[key]!);
    } catch (err) {
      throw new Error(`failed to parse bundle for federated domain "${key}": ${(err as Error).message}`, { cause: err });
    }
    if (certs.length === 0) throw new Error(`no certificates in bundle for federated domain "${key}"`);
    federated.push([key, certs]);
  }
  const out: ParsedSVID[] = [];
  for (const [i, raw] of resp.svids.entries()) {
    const where = `failed to parse svid entry ${i} for spiffe id "${raw.spiffe_id}"`;
    let certificates: Uint8Array[];
    let bundle: Uint8Array[];
    try {
      const svid = await parseX509SVID(raw.x509_svid, raw.x509_svid_key, raw.hint);
      certificates = svid.certificates;
      bundle = splitDerCertificates(raw.bundle);
    } catch (err) {
      throw new Error(`${where}: ${(err as Error).message}`, { cause: err });
    }
    if (bundle.length === 0) throw new Error(`${where}: no certificates in trust bundle`);
    const id = SpiffeId.parse(raw.spiffe_id);
    try {
      await verifyX509SVID(certificates, new BundleSet<X509Bundle>([new X509Bundle(id.trustDomain, bundle)]));
    } catch (err) {
      throw new Error(`"${raw.spiffe_id}" SVID failed verification against bundle: ${(err as Error).message}`, { cause: err });
    }
    out.push({ spiffeId: raw.spiffe_id, hint: raw.hint, certificates, bundle, federated, key: raw.x509_svid_key });
  }
  return out;
}

/** temp file + fsync + rename, so a reader never sees half a key. */
async function writeAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.chmod(mode);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  await rename(tmp, path);
}

async function writeResponse(dir: string, svids: readonly ParsedSVID[], out: NodeJS.WritableStream): Promise<void> {
  for (const [i, svid] of svids.entries()) {
    const svidPath = join(dir, `svid.${i}.pem`);
    const keyPath = join(dir, `svid.${i}.key`);
    const bundlePath = join(dir, `bundle.${i}.pem`);
    out.write(`Writing SVID #${i} to file ${svidPath}.\n`);
    await writeAtomic(svidPath, pemEncodeCertificates(svid.certificates), 0o644);
    out.write(`Writing key #${i} to file ${keyPath}.\n`);
    await writeAtomic(keyPath, pemEncodePrivateKey(svid.key), 0o600);
    out.write(`Writing bundle #${i} to file ${bundlePath}.\n`);
    await writeAtomic(bundlePath, pemEncodeCertificates(svid.bundle), 0o644);
    for (const [j, [td, cas]] of svid.federated.entries()) {
      const p = join(dir, `federated_bundle.${i}.${j}.pem`);
      out.write(`Writing federated bundle #${j} for trust domain ${td} to file ${p}.\n`);
      await writeAtomic(p, pemEncodeCertificates(cas), 0o644);
    }
  }
}

export const run: Command = async (args, io) => {
  const parsed = parseCommandFlags('fetch x509', args, SPECS, io);
  if (!parsed.values) return parsed.code;
  const v = parsed.values;
  let client;
  try {
    const format = outputFormat(v, 'output');
    client = makeClient(resolveSocket(v, io.env));
    const start = process.hrtime.bigint();
    const resp = await client.fetchRawX509SVID({ timeoutMs: Number(v['timeout']), signal: io.signal });
    const elapsed = process.hrtime.bigint() - start;
    if (format === 'json') {
      io.stdout.write(goJSON(protoToJSON(resp)));
      return 0;
    }
    const svids = await parseAndValidate(resp);
    if (!v['silent']) io.stdout.write(formatX509SVIDs(svids, elapsed));
    const dir = String(v['write'] ?? '');
    if (dir !== '') await writeResponse(dir, svids, io.stdout);
    return 0;
  } catch (err) {
    io.stderr.write(`${errorText(err)}\n`);
    return 1;
  } finally {
    client?.close();
  }
};
