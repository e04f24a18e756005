/** `api watch`: prints every X.509 context update until SIGINT, like spire-agent. */
import type { Command, FlagSpec } from '../flags.js';
import type { X509Context } from '../../sdk/index.js';
import { SOCKET_FLAGS, errorText, makeClient, parseCommandFlags, resolveSocket } from './api-common.js';
import { formatX509SVIDs, type PrintableSVID } from './api-x509-printer.js';

const SPECS: readonly FlagSpec[] = [...SOCKET_FLAGS];

/** spire-agent's watch splits the context's bundles into the SVID's own and the rest, by trust domain name. */
export function printableFromContext(ctx: X509Context): PrintableSVID[] {
  return ctx.svids.map((svid) => {
    let bundle: Uint8Array[] = [];
    const federated: [string, Uint8Array[]][] = [];
    for (const b of ctx.bundles.bundles()) {
      if (b.trustDomain.equals(svid.id.trustDomain)) bundle = b.authorities();
      else federated.push([b.trustDomain.name, b.authorities()]);
    }
    federated.sort(([a], [b]) => a.localeCompare(b));
    return { spiffeId: svid.id.toString(), hint: svid.hint, certificates: svid.certificates, bundle, federated };
  });
}

export const run: Command = async (args, io) => {
  const parsed = parseCommandFlags('watch', args, SPECS, io);
  if (!parsed.values) return parsed.code;
  let client;
  try {
    client = makeClient(resolveSocket(parsed.values, io.env));
    let last = process.hrtime.bigint();
    await client.watchX509Context(
      {
        onUpdate: (ctx) => {
          const now = process.hrtime.bigint();
          io.stdout.write(formatX509SVIDs(printableFromContext(ctx), now - last));
          last = now;
        },
        onError: (err) => io.stderr.write(`${errorText(err)}\n`),
      },
      io.signal,
    );
    return 0;
  } catch (err) {
    // The watcher already printed a gRPC failure; only other problems are new here.
    if (!io.signal.aborted && !(err as { status?: number }).status) io.stderr.write(`${errorText(err)}\n`);
    return io.signal.aborted ? 0 : 1;
  } finally {
    client?.close();
  }
};
