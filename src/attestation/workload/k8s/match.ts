/**
 * Which pod, and which container status in it, a workload's cgroup identity points
 * to in one pod list (spiffe/spire's k8s attestor, by container ID and pod UID).
 */
import type { ContainerInfo } from '../../../proc/container-info.js';
import { K8sAttestorError } from './errors.js';
import type { PodList } from './pod-list.js';
import { containerSelectors, podSelectors } from './selectors.js';

/**
 * The selector values, or undefined when this list does not (yet) show the workload.
 * With a pod UID from cgroups only that pod is considered. With
 * disable_container_selectors, a known pod is enough even before its container
 * status lists the container (it may not be ready yet).
 */
export function matchWorkload(list: PodList, info: ContainerInfo, disableContainerSelectors: boolean): string[] | undefined {
  const containerId = info.containerId ?? '';
  const podUid = info.podUid ?? '';
  let found = list.byContainer.get(containerId) ?? [];
  if (podUid !== '') found = found.filter((l) => l.pod.uid === podUid);
  if (found.length > 1) {
    throw new K8sAttestorError(
      'duplicate_container',
      `k8s: two pods found with same container Id ${containerId} (${found.map((l) => `${l.pod.namespace}/${l.pod.name}`).join(', ')}); refusing to guess which one the workload runs in`,
    );
  }
  const hit = found[0];
  if (hit) return disableContainerSelectors ? podSelectors(hit.pod) : [...podSelectors(hit.pod), ...containerSelectors(hit.status)];
  if (podUid !== '' && disableContainerSelectors) {
    const pod = list.pods.get(podUid);
    if (pod) return podSelectors(pod);
  }
  return undefined;
}
