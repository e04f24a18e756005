/**
 * `debug getinfo` (spire-agent v1.15; v1.13.3 has no such verb): the admin socket's Debug
 * GetInfo, printed as spire-agent v1.15 prints it, or as its protojson with -output json.
 */
import type { Command } from '../flags.js';
import { formatGoDuration } from '../../duration.js';
import { callAdmin, protoJSON, rpcErrorText, runAdminCommand } from './admin-common.js';

/** Go's time.Unix(s, 0).UTC().Format(time.RFC3339). */
function rfc3339(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

interface Cert {
  id?: { trust_domain?: string; path?: string } | null;
  expires_at?: string;
  subject?: string;
}

export function prettyGetInfo(r: Record<string, unknown>): string {
  const lastSync = Number(r['last_sync_success'] ?? 0);
  const lines = [
    'Agent Debug Info:',
    `  Uptime:                          ${formatGoDuration(BigInt(Number(r['uptime'] ?? 0)) * 1_000_000_000n)}`,
    `  Last Sync Success:               ${lastSync === 0 ? '(never)' : rfc3339(lastSync)}`,
    `  Cached X.509 SVIDs:              ${Number(r['cached_x509_svids_count'] ?? 0)}`,
    `  Cached JWT SVIDs:                ${Number(r['cached_jwt_svids_count'] ?? 0)}`,
    `  Cached SVID Store X.509 SVIDs:   ${Number(r['cached_svidstore_x509_svids_count'] ?? 0)}`,
  ];
  const chain = (r['svid_chain'] as Cert[] | undefined) ?? [];
  if (chain.length > 0) {
    lines.push('  SVID Chain:');
    chain.forEach((c, i) => {
      lines.push(`    [${i}] SPIFFE ID:  ${c.id ? `spiffe://${c.id.trust_domain ?? ''}${c.id.path ?? ''}` : '(none)'}`);
      lines.push(`        Subject:    ${c.subject ?? ''}`);
      lines.push(`        Expires At: ${rfc3339(Number(c.expires_at ?? 0))}`);
    });
  }
  return lines.join('\n') + '\n';
}

export const run: Command = (args, io) =>
  runAdminCommand(
    {
      name: 'debug getinfo',
      run: async ({ socketPath, format, io: out }) => {
        let resp: Record<string, unknown>;
        try {
          resp = await callAdmin(socketPath, 'Debug', 'GetInfo', {});
        } catch (err) {
          throw new Error(rpcErrorText(err));
        }
        out.stdout.write(format === 'json' ? protoJSON(resp) : prettyGetInfo(resp));
      },
    },
    args,
    io,
  );
