/** spire-agent's rule for where the admin socket may live. */
import { dirname, relative, resolve, isAbsolute } from 'node:path';
import { SpiffeAgentError } from '../../errors.js';

/**
 * The public socket's directory is world-reachable by design; an admin socket in it (or
 * below it) would share that exposure, so spire-agent refuses the combination.
 */
export function checkAdminSocketPath(publicSocketPath: string, adminSocketPath: string): void {
  const publicDir = resolve(dirname(publicSocketPath));
  const rel = relative(publicDir, resolve(adminSocketPath));
  if (rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))) {
    throw new SpiffeAgentError(
      'admin_socket_path_invalid',
      `agent: admin_socket_path ${adminSocketPath} is in or under ${publicDir}, the directory of the Workload API socket; ` +
        'admin socket cannot be in the same directory or a subdirectory as that containing the Workload API socket — move it elsewhere (e.g. /tmp/spire-agent/private/admin.sock)',
    );
  }
}
