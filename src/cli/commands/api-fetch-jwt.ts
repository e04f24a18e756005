/** `api fetch jwt`: JWT bundles then JWT-SVIDs for -audience, printed like spire-agent. */
import type { Command, FlagSpec } from '../flags.js';
import { UsageError } from '../flags.js';
import { OUTPUT_FLAG, SOCKET_FLAGS, TIMEOUT_FLAG, errorText, goJSON, makeClient, outputFormat, parseCommandFlags, protoToJSON, resolveSocket } from './api-common.js';

const SPECS: readonly FlagSpec[] = [
  ...SOCKET_FLAGS,
  TIMEOUT_FLAG,
  OUTPUT_FLAG,
  { name: 'format', kind: 'string', usage: 'deprecated; use -output', default: '', typeName: 'value' },
  { name: 'audience', kind: 'strings', usage: 'comma separated list of audience values' },
  { name: 'spiffeID', kind: 'string', usage: 'SPIFFE ID subject (optional)', default: '' },
];

export const run: Command = async (args, io) => {
  const parsed = parseCommandFlags('fetch jwt', args, SPECS, io);
  if (!parsed.values) return parsed.code;
  const v = parsed.values;
  let client;
  try {
    const format = outputFormat(v, 'output', 'format');
    // Like Go's CommaStringsFlag: each -audience may hold a comma list, and the flag may repeat.
    const audience = ((v['audience'] as string[] | undefined) ?? []).flatMap((a) => a.split(','));
    client = makeClient(resolveSocket(v, io.env));
    if (audience.length === 0) throw new UsageError('audience must be specified');
    const call = { timeoutMs: Number(v['timeout']), signal: io.signal };
    const bundles = await client.fetchRawJWTBundles(call);
    const svids = await client.fetchRawJWTSVID({ audience, subject: String(v['spiffeID'] ?? '') }, call);
    if (format === 'json') {
      io.stdout.write(goJSON([protoToJSON(svids), protoToJSON(bundles)]));
      return 0;
    }
    for (const svid of svids.svids) {
      io.stdout.write(`token(${svid.spiffe_id}):\n\t${svid.svid}\n`);
      if (svid.hint !== '') io.stdout.write(`hint(${svid.spiffe_id}):\n\t${svid.hint}\n`);
    }
    for (const td of Object.keys(bundles.bundles).sort()) {
      io.stdout.write(`bundle(${td}):\n\t${Buffer.from(bundles.bundles[td]!).toString('utf8')}\n`);
    }
    return 0;
  } catch (err) {
    io.stderr.write(`${errorText(err)}\n`);
    return 1;
  } finally {
    client?.close();
  }
};
