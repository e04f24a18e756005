/** `api validate jwt`: asks the agent to validate a JWT-SVID; prints the result like spire-agent. */
import * as grpc from '@grpc/grpc-js';
import type { Command, FlagSpec } from '../flags.js';
import { UsageError } from '../flags.js';
import { WorkloadAPIError, structToJSON } from '../../sdk/index.js';
import { OUTPUT_FLAG, SOCKET_FLAGS, TIMEOUT_FLAG, errorText, goJSON, makeClient, outputFormat, parseCommandFlags, protoToJSON, resolveSocket } from './api-common.js';

const SPECS: readonly FlagSpec[] = [
  ...SOCKET_FLAGS,
  TIMEOUT_FLAG,
  OUTPUT_FLAG,
  { name: 'audience', kind: 'string', usage: 'expected audience value', default: '' },
  { name: 'svid', kind: 'string', usage: 'JWT SVID', default: '' },
];

export const run: Command = async (args, io) => {
  const parsed = parseCommandFlags('validate jwt', args, SPECS, io);
  if (!parsed.values) return parsed.code;
  const v = parsed.values;
  let client;
  try {
    const format = outputFormat(v, 'output');
    const audience = String(v['audience'] ?? '');
    const token = String(v['svid'] ?? '');
    client = makeClient(resolveSocket(v, io.env));
    if (audience === '') throw new UsageError('audience must be specified');
    if (token === '') throw new UsageError('svid must be specified');
    let resp;
    try {
      resp = await client.validateRawJWTSVID(token, audience, { timeoutMs: Number(v['timeout']), signal: io.signal });
    } catch (err) {
      if (err instanceof WorkloadAPIError && err.status === grpc.status.INVALID_ARGUMENT) {
        throw new Error(`SVID is not valid: ${err.details}`, { cause: err });
      }
      throw new Error(`unable to validate JWT SVID: ${errorText(err)}`, { cause: err });
    }
    const claims = structToJSON(resp.claims);
    if (format === 'json') {
      io.stdout.write(goJSON({ ...(protoToJSON(resp) as object), claims }));
      return 0;
    }
    io.stdout.write('SVID is valid.\n');
    io.stdout.write(`SPIFFE ID : ${resp.spiffe_id}\n`);
    io.stdout.write(`Claims    : ${goJSON(claims)}`);
    return 0;
  } catch (err) {
    io.stderr.write(`${errorText(err)}\n`);
    return 1;
  } finally {
    client?.close();
  }
};
