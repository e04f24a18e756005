/**
 * k8s selector values (without the `k8s:` type), formatted exactly as spire-agent
 * formats them so registration entries written for SPIRE match unchanged.
 */
import type { ContainerStatus, Pod } from './pod-list.js';

/**
 * `image` and `imageID` of each status, deduplicated, in order. spire-agent would also
 * emit an empty value for a container whose imageID is not known yet; no entry can
 * usefully select on that, so empty values are left out.
 */
function imageIdentifiers(statuses: readonly ContainerStatus[]): string[] {
  const out = new Set<string>();
  for (const s of statuses) {
    if (s.image !== '') out.add(s.image);
    if (s.imageId !== '') out.add(s.imageId);
  }
  return [...out];
}

export function podSelectors(pod: Pod): string[] {
  const out = [
    `sa:${pod.serviceAccountName}`,
    `ns:${pod.namespace}`,
    `node-name:${pod.nodeName}`,
    `pod-uid:${pod.uid}`,
    `pod-name:${pod.name}`,
    `pod-image-count:${pod.containerStatuses.length}`,
    `pod-init-image-count:${pod.initContainerStatuses.length}`,
  ];
  for (const image of imageIdentifiers(pod.containerStatuses)) out.push(`pod-image:${image}`);
  for (const image of imageIdentifiers(pod.initContainerStatuses)) out.push(`pod-init-image:${image}`);
  for (const [k, v] of pod.labels) out.push(`pod-label:${k}:${v}`);
  for (const o of pod.owners) out.push(`pod-owner:${o.kind}:${o.name}`, `pod-owner-uid:${o.kind}:${o.uid}`);
  return out;
}

export function containerSelectors(status: ContainerStatus): string[] {
  return [`container-name:${status.name}`, ...imageIdentifiers([status]).map((i) => `container-image:${i}`)];
}
