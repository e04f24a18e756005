/**
 * plugin_data of the docker workload attestor, with spire-agent's keys, defaults and
 * checks (pkg/agent/plugin/workloadattestor/docker/docker_posix.go).
 */
import { PluginDataReader } from '../../../config/plugin-data.js';
import type { PluginConfig } from '../../../config/types.js';
import { validateMatchers } from './cgroup-matchers.js';

export const DEFAULT_DOCKER_SOCKET = 'unix:///var/run/docker.sock';
export const DEFAULT_PODMAN_SOCKET = 'unix:///run/podman/podman.sock';
export const DEFAULT_PODMAN_SOCKET_TEMPLATE = 'unix:///run/user/%d/podman/podman.sock';

export interface DockerAttestorConfig {
  /** Filesystem path of the Docker Engine API socket (the `unix://` scheme removed). */
  readonly dockerSocketPath: string;
  /** Engine API version for the `/v<version>` path prefix; undefined = unversioned paths. */
  readonly dockerVersion: string | undefined;
  readonly podmanSocketPath: string;
  /** As written, `unix://` included; `%d` is the rootless user's uid, `%%` a literal '%'. */
  readonly podmanSocketPathTemplate: string;
  /** Empty = SPIRE's new container locator (src/proc/container-info.ts). */
  readonly containerIdCgroupMatchers: readonly string[];
  readonly verboseContainerLocatorLogs: boolean;
}

export function parseDockerConfig(plugin: PluginConfig, opts: { file?: string; text?: string } = {}): DockerAttestorConfig {
  const r = new PluginDataReader(plugin, opts);
  const socket = (key: string, def: string): string => {
    const v = r.string(key, def) || def;
    const path = unixSocketPath(v);
    if (path === undefined) r.problem(key, `expected "unix:///absolute/path" (only Unix sockets are supported), got ${JSON.stringify(v)}`);
    return path ?? '';
  };

  const dockerSocketPath = socket('docker_socket_path', DEFAULT_DOCKER_SOCKET);
  const podmanSocketPath = socket('podman_socket_path', DEFAULT_PODMAN_SOCKET);

  const template = r.string('podman_socket_path_template', DEFAULT_PODMAN_SOCKET_TEMPLATE) || DEFAULT_PODMAN_SOCKET_TEMPLATE;
  const templateProblem = checkTemplate(template);
  if (templateProblem !== undefined) r.problem('podman_socket_path_template', `invalid podman_socket_path_template: ${templateProblem}`);
  else if (unixSocketPath(formatTemplate(template, 0)) === undefined) {
    r.problem('podman_socket_path_template', `expected "unix:///absolute/path/with/%d", got ${JSON.stringify(template)}`);
  }

  let dockerVersion = r.optionalString('docker_version') || undefined;
  if (dockerVersion !== undefined) {
    dockerVersion = dockerVersion.replace(/^v/, '');
    if (!/^\d+\.\d+$/.test(dockerVersion)) r.problem('docker_version', `expected an Engine API version like "1.43", got ${JSON.stringify(dockerVersion)}`);
  }

  const matchers = r.stringList('container_id_cgroup_matchers');
  const useNewLocator = r.bool('use_new_container_locator', true);
  if (matchers.length > 0) {
    if (useNewLocator) {
      // spire-agent's own message, so existing runbooks still apply.
      r.problem(
        'container_id_cgroup_matchers',
        'the new container locator and custom cgroup matchers cannot both be used; to continue using custom matchers set use_new_container_locator=false',
      );
    }
    for (const p of validateMatchers(matchers)) r.problem('container_id_cgroup_matchers', p);
  }

  const verbose = r.bool('verbose_container_locator_logs', false);
  if (r.raw('sigstore') !== undefined) {
    r.problem('sigstore', 'image signature verification (sigstore) is not supported by spiffe-agent yet; remove the block');
  }
  r.finish();

  return Object.freeze({
    dockerSocketPath,
    dockerVersion,
    podmanSocketPath,
    podmanSocketPathTemplate: template,
    containerIdCgroupMatchers: Object.freeze([...matchers]),
    verboseContainerLocatorLogs: verbose,
  });
}

/** "unix:///run/x.sock" → "/run/x.sock"; anything else → undefined. */
export function unixSocketPath(address: string): string | undefined {
  const m = /^unix:\/\/(\/.*)$/.exec(address);
  return m?.[1];
}

function checkTemplate(t: string): string | undefined {
  let placeholders = 0;
  for (let i = 0; i < t.length; i++) {
    if (t[i] !== '%') continue;
    const next = t[i + 1];
    if (next === undefined) return 'trailing % at end of template';
    if (next === 'd') placeholders++;
    else if (next !== '%') return 'template only supports escaped %% or the %d UID placeholder';
    i++;
  }
  return placeholders === 1 ? undefined : 'template must contain exactly one %d UID placeholder';
}

/** Substitutes the uid for %d and '%' for %%, like Go's fmt.Sprintf on a validated template. */
export function formatTemplate(t: string, uid: number): string {
  return t.replace(/%([d%])/g, (_, c: string) => (c === 'd' ? String(uid) : '%'));
}
