/**
 * k8s selector values (without the `k8s:` type), formatted exactly as spire-agent
 * formats them so registration entries written for SPIRE match unchanged.
 */
import type { ContainerStatus, Pod } from './pod-list.js';

/**
 * `image` and `imageID` of each status, deduplicated, in order. A container the kubelet has
 * not started yet (waiting, e.g. while an init container runs) has an empty imageID, and
 * spire-agent v1.13.3 then emits the empty value (`pod-image:`); so do we, so that the
 * selector sets are string-equal (compared against the real kubelet in
 * test/interop/kube/k8s-workload.test.ts).
 */
function imageIdentifiers(statuses: readonly ContainerStatus[]): string[] {
  const out = new Set<string>();
  for (const s of statuses) {
    out.add(s.imageId);
    out.add(s.image);
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
