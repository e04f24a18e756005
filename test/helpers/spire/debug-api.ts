/**
 * The admin socket's Debug GetInfo, as both agents serve it (spire-agent v1.13.3's debug API and
 * ours), read through test/helpers/admin-client.mjs.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const ADMIN_CLIENT = join(import.meta.dirname, '../admin-client.mjs');

export interface DebugInfo {
  svid_chain: { id?: { trust_domain: string; path: string }; expires_at: string; subject: string }[];
  last_sync_success: string;
  cached_x509_svids_count?: number;
}

export async function debugInfo(adminSocket: string): Promise<DebugInfo> {
  const { stdout } = await promisify(execFile)(process.execPath, [ADMIN_CLIENT, adminSocket, 'Debug', 'GetInfo', '{}'], { timeout: 30_000 });
  const line = JSON.parse(stdout.trim().split('\n')[0]!) as { response?: DebugInfo; status?: unknown };
  if (!line.response) throw new Error(`GetInfo failed: ${stdout}`);
  return line.response;
}
