/** spire-agent's rule for where the admin socket may live. */
import { dirname, relative, resolve, isAbsolute } from 'node:path';
import { SpiffeAgentError } from '../../errors.js';

/**
 * The public socket's directory is world-reachable by design; an admin socket in it (or
 * below it) would share that exposure, so spire-agent refuses the combination. This is the
 * early check on the paths as written; checkAdminSocketDirs repeats it on resolved paths.
 */
export function checkAdminSocketPath(publicSocketPath: string, adminSocketPath: string): void {
  checkAdminSocketDirs(resolve(dirname(publicSocketPath)), resolve(dirname(adminSocketPath)), adminSocketPath);
}

/**
 * The same rule on the directories the sockets really end up in (realpath), so a symlink
 * cannot put the admin socket under the public directory while its path looks elsewhere.
 */
export function checkAdminSocketDirs(publicDir: string, adminDir: string, adminSocketPath: string): void {
  const rel = relative(publicDir, adminDir);
  if (rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))) {
    const via = adminDir === resolve(dirname(adminSocketPath)) ? '' : ` (through symlinks, it resolves to ${adminDir})`;
    throw new SpiffeAgentError(
      'admin_socket_path_invalid',
      `agent: admin_socket_path ${adminSocketPath}${via} is in or under ${publicDir}, the directory of the Workload API socket; ` +
        'admin socket cannot be in the same directory or a subdirectory as that containing the Workload API socket — move it elsewhere (e.g. /tmp/spire-agent/private/admin.sock)',
    );
  }
}
