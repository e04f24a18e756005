/**
 * The kubelet's PodList, reduced once per fetch to the fields the selectors use and
 * indexed by container ID, so that a warm attestation is a map lookup rather than a
 * walk over every pod.
 */
import { SpiffeAgentError, type ErrorCodes } from '../../../errors.js';

declare module '../../../errors.js' {
  interface ErrorCodes {
    podList: 'kubelet_response';
  }
}

/** Codes: `kubelet_response` (not a PodList). */
export class PodListError extends SpiffeAgentError<ErrorCodes['podList']> {}

export interface ContainerStatus {
  readonly name: string;
  readonly image: string;
  readonly imageId: string;
  /** The ID part of containerID (`containerd://<id>` → `<id>`); '' when not yet running. */
  readonly containerId: string;
}

export interface OwnerReference {
  readonly kind: string;
  readonly name: string;
  readonly uid: string;
}

export interface Pod {
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccountName: string;
  readonly nodeName: string;
  readonly labels: readonly (readonly [string, string])[];
  readonly owners: readonly OwnerReference[];
  readonly containerStatuses: readonly ContainerStatus[];
  readonly initContainerStatuses: readonly ContainerStatus[];
}

export interface ContainerLocation {
  readonly pod: Pod;
  readonly status: ContainerStatus;
}

export interface PodList {
  /** Increases with every successful fetch. */
  readonly version: number;
  readonly pods: ReadonlyMap<string, Pod>;
  /**
   * Container ID → where it runs, one location per pod (the first matching status in
   * that pod, containers before init containers, as spire-agent looks them up).
   */
  readonly byContainer: ReadonlyMap<string, readonly ContainerLocation[]>;
}

type Json = Record<string, unknown>;

const obj = (v: unknown): Json => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/**
 * `containerd://<id>`, `docker://<id>`, `cri-o://<id>`: the URL host part, as
 * spire-agent compares it. Anything without a scheme yields '' and never matches.
 */
export function containerIdOf(containerID: string): string {
  const i = containerID.indexOf('://');
  if (i < 0) return '';
  const rest = containerID.slice(i + 3);
  const end = rest.search(/[/?#]/);
  return end < 0 ? rest : rest.slice(0, end);
}

function parseStatus(v: unknown): ContainerStatus {
  const s = obj(v);
  return { name: str(s['name']), image: str(s['image']), imageId: str(s['imageID']), containerId: containerIdOf(str(s['containerID'])) };
}

export function parsePod(v: unknown): Pod {
  const meta = obj(obj(v)['metadata']);
  const spec = obj(obj(v)['spec']);
  const status = obj(obj(v)['status']);
  return {
    uid: str(meta['uid']),
    name: str(meta['name']),
    namespace: str(meta['namespace']),
    serviceAccountName: str(spec['serviceAccountName']),
    nodeName: str(spec['nodeName']),
    labels: Object.entries(obj(meta['labels'])).map(([k, val]) => [k, str(val)] as const),
    owners: arr(meta['ownerReferences']).map((o) => ({ kind: str(obj(o)['kind']), name: str(obj(o)['name']), uid: str(obj(o)['uid']) })),
    containerStatuses: arr(status['containerStatuses']).map(parseStatus),
    initContainerStatuses: arr(status['initContainerStatuses']).map(parseStatus),
  };
}

export function parsePodList(body: Buffer | string, version: number): PodList {
  let doc: unknown;
  try {
    doc = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch (err) {
    throw new PodListError('kubelet_response', `k8s: unable to parse kubelet response: ${(err as Error).message}`, { cause: err });
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new PodListError('kubelet_response', 'k8s: invalid kubelet response: expected an object');
  }
  const items = (doc as Json)['items'];
  if (items !== null && !Array.isArray(items)) {
    throw new PodListError('kubelet_response', 'k8s: invalid kubelet response: expected an items array');
  }
  const pods = new Map<string, Pod>();
  for (const item of items ?? []) {
    const pod = parsePod(item);
    // Pods are keyed by UID; one without cannot be told apart and is skipped, as in spire-agent.
    if (pod.uid !== '') pods.set(pod.uid, pod);
  }
  const byContainer = new Map<string, ContainerLocation[]>();
  for (const pod of pods.values()) {
    const seen = new Set<string>();
    for (const status of [...pod.containerStatuses, ...pod.initContainerStatuses]) {
      if (status.containerId === '' || seen.has(status.containerId)) continue;
      seen.add(status.containerId);
      const list = byContainer.get(status.containerId);
      if (list) list.push({ pod, status });
      else byContainer.set(status.containerId, [{ pod, status }]);
    }
  }
  return { version, pods, byContainer };
}
