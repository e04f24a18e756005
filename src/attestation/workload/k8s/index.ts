/**
 * The k8s workload attestor: the caller's container ID and pod UID from its cgroups,
 * then its pod from the local kubelet's pod list, then spire-agent's k8s selectors.
 * A process that is not in a container gets no k8s selectors (success with []).
 */
import type { Clock } from '../../../clock.js';
import type { PluginConfig } from '../../../config/types.js';
import { containerInfoForPid } from '../../../proc/container-info.js';
import type { ProcReader } from '../../../proc/proc-reader.js';
import type { Logger } from '../../../telemetry/logger.js';
import { F } from '../../../telemetry/names.js';
import type { WorkloadAttestor } from '../types.js';
import { parseK8sConfig, type K8sAttestorConfig } from './config.js';
import { K8sAttestorError } from './errors.js';
import { KubeletClient, type KubeletClientOptions } from './kubelet-client.js';
import { matchWorkload } from './match.js';
import { PodCacheError, PodListCache } from './pod-cache.js';

export { parseK8sConfig, type K8sAttestorConfig } from './config.js';
export { K8sAttestorError } from './errors.js';
export { KubeletError } from './kubelet-client.js';

export interface K8sAttestorDeps {
  readonly proc: ProcReader;
  readonly log: Logger;
  readonly clock: Clock;
  readonly env: Record<string, string | undefined>;
  /** DNS seam: tests resolve a fake node name to the fake kubelet. */
  readonly lookup?: KubeletClientOptions['lookup'];
  /** The config file the plugin block came from, for messages. */
  readonly file?: string;
}

const POD_UID = 'pod_uid';
const CONTAINER_ID = 'container_id';
const ATTEMPT = 'attempt';

export function createK8sAttestor(plugin: PluginConfig, deps: K8sAttestorDeps): K8sAttestor {
  const config = parseK8sConfig(plugin, deps.env, deps.file === undefined ? {} : { file: deps.file });
  return new K8sAttestor(config, deps);
}

export class K8sAttestor implements WorkloadAttestor {
  readonly name = 'k8s';
  private readonly client: KubeletClient | undefined;
  private readonly cache: PodListCache | undefined;
  private readonly log: Logger;
  private loadedAt: number;

  constructor(
    readonly config: K8sAttestorConfig,
    private readonly deps: K8sAttestorDeps,
  ) {
    this.log = deps.log;
    this.loadedAt = deps.clock.now();
    if (!config.useNewContainerLocator) {
      this.log.warn('k8s: use_new_container_locator = false asks for the legacy container locator, which spiffe-agent does not implement; using the new one');
    }
    if (config.disableKubeletClient) return;
    this.client = new KubeletClient(config.kubelet, { lookup: deps.lookup });
    this.cache = new PodListCache((signal) => this.fetch(signal), deps.clock, config.pollRetryIntervalMs);
  }

  /** Kubelet requests made so far. */
  get kubeletRequests(): number {
    return this.cache?.fetches ?? 0;
  }

  async attest(pid: number, signal: AbortSignal): Promise<string[]> {
    if (!this.cache) {
      throw new K8sAttestorError('kubelet_disabled', 'k8s: kubelet client is disabled (disable_kubelet_client = true), so processes cannot be attested; remove that key');
    }
    const verboseLog = this.config.verboseContainerLocatorLogs ? this.log.child({ [F.pid]: pid }) : undefined;
    const info = await containerInfoForPid(this.deps.proc, pid, { verboseLog });
    if (info.containerId === undefined) return [];
    const log = this.log.child({ [F.pid]: pid, [POD_UID]: info.podUid ?? '', [CONTAINER_ID]: info.containerId });

    let version = 0;
    for (let attempt = 1; ; attempt++) {
      let listErr: unknown;
      try {
        const list = await this.cache.next(version, signal);
        version = list.version;
        const selectors = matchWorkload(list, info, this.config.disableContainerSelectors);
        if (selectors) return selectors;
      } catch (err) {
        if (signal.aborted || err instanceof PodCacheError || err instanceof K8sAttestorError) throw err;
        listErr = err;
      }
      if (attempt >= this.config.maxPollAttempts) {
        if (listErr !== undefined) {
          log.warn({ [F.error]: errMessage(listErr), [ATTEMPT]: attempt }, 'Unable to get pod list; giving up');
          throw new K8sAttestorError('kubelet_unavailable', `k8s: unable to get the pod list after ${attempt} attempts: ${errMessage(listErr)}`, {
            cause: listErr,
          });
        }
        log.warn({ [ATTEMPT]: attempt }, 'Container id not found; giving up');
        throw new K8sAttestorError(
          'pod_not_found',
          `k8s: no selectors found after max poll attempts: container ${info.containerId}${info.podUid ? ` of pod ${info.podUid}` : ''} ` +
            `was not in the kubelet's pod list in ${attempt} attempts ${this.config.pollRetryIntervalMs} ms apart (max_poll_attempts, poll_retry_interval)`,
        );
      }
      if (listErr !== undefined) log.warn({ [F.error]: errMessage(listErr), [ATTEMPT]: attempt }, 'Unable to get pod list; will retry after backoff');
      else log.debug({ [ATTEMPT]: attempt }, 'Container id not found; will retry after backoff');
    }
  }

  async close(): Promise<void> {
    this.cache?.close();
    this.client?.close();
  }

  /** Credentials are re-read every reload_interval, lazily, just before a fetch. */
  private async fetch(signal: AbortSignal): Promise<Buffer> {
    const client = this.client!;
    const now = this.deps.clock.now();
    if (now - this.loadedAt >= this.config.reloadIntervalMs) {
      client.reload();
      this.loadedAt = now;
    }
    return client.getPodList(signal);
  }
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
