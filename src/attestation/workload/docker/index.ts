/**
 * The docker workload attestor, with spire-agent's config keys and selectors:
 * label:<key>:<value>, env:<NAME=value>, image_id:<Config.Image>, image_config_digest:<image Id>.
 * The container comes from the caller's cgroups; Podman containers are looked up on
 * the rootful or the owning user's rootless Podman socket instead of Docker's.
 */
import type { Clock } from '../../../clock.js';
import type { PluginConfig } from '../../../config/types.js';
import { containerInfoFromCgroupText, podmanSocketFor } from '../../../proc/container-info.js';
import type { ProcReader } from '../../../proc/proc-reader.js';
import { F } from '../../../telemetry/names.js';
import type { Logger } from '../../../telemetry/logger.js';
import type { WorkloadAttestor } from '../types.js';
import { compileMatchers, containerIdFromMatchers, type CgroupMatcher } from './cgroup-matchers.js';
import { formatTemplate, parseDockerConfig, unixSocketPath, type DockerAttestorConfig } from './config.js';
import { EngineClient, aborted, type ContainerConfig } from './engine-client.js';
import { DockerAttestorError } from './errors.js';

export { DockerAttestorError } from './errors.js';
export { parseDockerConfig, type DockerAttestorConfig } from './config.js';

export interface DockerAttestorDeps {
  readonly proc: ProcReader;
  readonly log: Logger;
  readonly clock: Clock;
}

/** spire-agent's retryer: one try plus 3 retries, waiting 100, 200, 400 ms. */
export const INSPECT_RETRIES = 3;
export const INSPECT_INITIAL_BACKOFF_MS = 100;

/** Where one container is looked up. */
export interface EngineTarget {
  readonly runtime: 'docker' | 'podman';
  readonly socketPath: string;
  /** Podman gets unversioned (Docker-compatible) paths, as spire-agent's Podman client does. */
  readonly version: string | undefined;
}

/** Docker without docker_version: the version comes from the engine's `/_ping` (engine-client.ts). */
function negotiates(t: EngineTarget): boolean {
  return t.runtime === 'docker' && t.version === undefined;
}

export function createDockerAttestor(plugin: PluginConfig, deps: DockerAttestorDeps): WorkloadAttestor {
  return new DockerAttestor(parseDockerConfig(plugin), deps);
}

export class DockerAttestor implements WorkloadAttestor {
  readonly name = 'docker';
  private readonly engine = new EngineClient();
  private readonly matcher: CgroupMatcher | undefined;

  constructor(
    private readonly config: DockerAttestorConfig,
    private readonly deps: DockerAttestorDeps,
  ) {
    this.matcher = config.containerIdCgroupMatchers.length > 0 ? compileMatchers(config.containerIdCgroupMatchers) : undefined;
  }

  async attest(pid: number, signal: AbortSignal): Promise<string[]> {
    const log = this.deps.log.child({ [F.pid]: pid });
    const cgroupText = await this.deps.proc.cgroup(pid);
    const containerId = await this.containerId(pid, cgroupText, log);
    if (containerId === undefined) return [];

    const target = this.targetFor(cgroupText, log);
    const { cfg, version } = await this.inspectWithRetry(target, containerId, signal, log);
    const out = selectorsFromConfig(cfg);
    if (cfg.image !== '') {
      try {
        out.push(`image_config_digest:${await this.engine.inspectImage(target.socketPath, version, cfg.image, signal)}`);
      } catch (err) {
        if (signal.aborted) throw aborted(signal);
        // As in spire-agent, a failed image inspect only drops this one selector.
        log.warn({ [F.error]: (err as Error).message, image: cfg.image }, 'docker: image inspect failed; no image_config_digest selector');
      }
    }
    return out;
  }

  /** Which engine serves this container: Podman (rootless per uid, or rootful) if the cgroups say libpod. */
  targetFor(cgroupText: string, log: Logger): EngineTarget {
    const choice = podmanSocketFor(cgroupText);
    if (!choice.podman) {
      return { runtime: 'docker', socketPath: this.config.dockerSocketPath, version: this.config.dockerVersion };
    }
    if (choice.rootlessUid === undefined) return { runtime: 'podman', socketPath: this.config.podmanSocketPath, version: undefined };
    const address = formatTemplate(this.config.podmanSocketPathTemplate, choice.rootlessUid);
    const socketPath = unixSocketPath(address);
    if (socketPath === undefined) {
      log.warn({ address }, 'docker: podman_socket_path_template gave no unix socket; using the rootful Podman socket');
      return { runtime: 'podman', socketPath: this.config.podmanSocketPath, version: undefined };
    }
    return { runtime: 'podman', socketPath, version: undefined };
  }

  async close(): Promise<void> {
    this.engine.close();
  }

  private async containerId(pid: number, cgroupText: string, log: Logger): Promise<string | undefined> {
    const verbose = this.config.verboseContainerLocatorLogs ? log : undefined;
    if (this.matcher !== undefined) {
      if (verbose) verbose.debug({ cgroup: cgroupText }, 'docker: matching cgroups against container_id_cgroup_matchers');
      return containerIdFromMatchers(this.matcher, cgroupText);
    }
    // The cgroup file was read once above; the locator gets the same text so both
    // decisions (which container, which engine socket) come from one snapshot.
    const info = await containerInfoFromCgroupText(cgroupText, () => this.deps.proc.mountinfo(pid), { verboseLog: verbose });
    return info.containerId;
  }

  /** The ping that negotiates the version is retried with the inspect, as in spire-agent's client. */
  private async inspectWithRetry(target: EngineTarget, id: string, signal: AbortSignal, log: Logger): Promise<{ cfg: ContainerConfig; version: string | undefined }> {
    for (let attempt = 0; ; attempt++) {
      try {
        const version = negotiates(target) ? await this.engine.negotiatedVersion(target.socketPath, signal) : target.version;
        return { cfg: await this.engine.inspectContainer(target.socketPath, version, id, signal), version };
      } catch (err) {
        if (signal.aborted) throw aborted(signal);
        if (attempt === INSPECT_RETRIES) throw err;
        const wait = INSPECT_INITIAL_BACKOFF_MS * 2 ** attempt;
        log.debug({ [F.error]: (err as Error).message, attempt: attempt + 1, wait_ms: wait, runtime: target.runtime }, 'docker: container inspect failed; retrying');
        await sleep(this.deps.clock, wait, signal);
      }
    }
  }
}

/** Labels, then env, then image_id: spire-agent's order. */
export function selectorsFromConfig(cfg: ContainerConfig): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(cfg.labels)) out.push(`label:${k}:${v}`);
  for (const e of cfg.env) out.push(`env:${e}`);
  if (cfg.image !== '') out.push(`image_id:${cfg.image}`);
  return out;
}

function sleep(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      cancel();
      reject(aborted(signal));
    };
    const cancel = clock.setTimer(ms, () => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
