import { describe, expect, it } from 'vitest';
import { matchWorkload } from '../../../../src/attestation/workload/k8s/match.js';
import { containerIdOf, parsePodList } from '../../../../src/attestation/workload/k8s/pod-list.js';
import { containerSelectors, podSelectors } from '../../../../src/attestation/workload/k8s/selectors.js';
import { API_CONTAINER_SELECTORS, C_API, C_INIT, C_OTHER, POD1, POD1_SELECTORS, POD3, fixturePods, sorted } from './helpers.js';

const list = (pods: unknown[] = fixturePods()) => parsePodList(JSON.stringify({ kind: 'PodList', apiVersion: 'v1', items: pods }), 1);

describe('k8s selectors', () => {
  it('formats every pod selector as spire-agent does (labels, two owners, init containers)', () => {
    const pod = list().pods.get(POD1)!;
    expect(sorted(podSelectors(pod))).toEqual(sorted(POD1_SELECTORS));
  });

  it('gives the calling container its name and both image and imageID', () => {
    const pod = list().pods.get(POD1)!;
    expect(sorted(containerSelectors(pod.containerStatuses[0]!))).toEqual(API_CONTAINER_SELECTORS);
  });

  it('deduplicates pod images and, as spire-agent v1.13.3, keeps the empty imageID of a container not started yet', () => {
    const pods = fixturePods();
    pods[0]!['status'].containerStatuses[1].image = 'registry.example.com/payments/api:1.4.2';
    pods[0]!['status'].containerStatuses[1].imageID = '';
    const values = podSelectors(list(pods).pods.get(POD1)!).filter((v) => v.startsWith('pod-image:'));
    expect(sorted(values)).toEqual([
      'pod-image:',
      'pod-image:registry.example.com/payments/api:1.4.2',
      'pod-image:registry.example.com/payments/api@sha256:ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12',
    ]);
  });

  it('takes the id after :// of every runtime scheme, and nothing from a bare string', () => {
    expect(containerIdOf(`containerd://${C_API}`)).toBe(C_API);
    expect(containerIdOf(`docker://${C_API}`)).toBe(C_API);
    expect(containerIdOf(`cri-o://${C_API}`)).toBe(C_API);
    expect(containerIdOf(C_API)).toBe('');
    expect(containerIdOf('')).toBe('');
  });

  it('rejects a kubelet response that is not a PodList', () => {
    expect(() => parsePodList('not json', 1)).toThrow(/k8s: unable to parse kubelet response/);
    expect(() => parsePodList('[]', 1)).toThrow(/expected an object/);
    expect(() => parsePodList('{"kind":"PodList"}', 1)).toThrow(/expected an items array/);
    expect(parsePodList('{"items":null}', 1).pods.size).toBe(0);
  });
});

describe('k8s matching', () => {
  it('finds an init container and gives it container selectors', () => {
    const got = matchWorkload(list(), { containerId: C_INIT, podUid: POD1 }, false)!;
    expect(got).toContain('container-name:migrate');
    expect(got).toContain(`pod-uid:${POD1}`);
  });

  it('finds a container by id alone when cgroups name no pod (CRI-O without pod in the path)', () => {
    expect(matchWorkload(list(), { containerId: C_OTHER, podUid: undefined }, false)).toContain('pod-name:debug');
  });

  it('looks only at the pod named by cgroups', () => {
    expect(matchWorkload(list(), { containerId: C_OTHER, podUid: POD1 }, false)).toBeUndefined();
  });

  it('is not found while the container has no status yet, unless container selectors are off and the pod is known', () => {
    const info = { containerId: 'f'.repeat(64), podUid: POD3 };
    expect(matchWorkload(list(), info, false)).toBeUndefined();
    expect(sorted(matchWorkload(list(), info, true)!)).toEqual(
      sorted([
        'sa:starting', 'ns:default', 'node-name:k8s-node-1', `pod-uid:${POD3}`, 'pod-name:starting-0', 'pod-image-count:1',
        // The waiting container has no imageID yet: spire-agent v1.13.3 gives the empty value too.
        'pod-init-image-count:0', 'pod-image:', 'pod-image:registry.example.com/starting:2', 'pod-label:app:starting',
        'pod-owner:StatefulSet:starting', 'pod-owner-uid:StatefulSet:77aa88bb-99cc-4ddd-8eee-ffff00001111',
      ]),
    );
  });

  it('omits container selectors when they are disabled, even when the container is found', () => {
    expect(sorted(matchWorkload(list(), { containerId: C_API, podUid: POD1 }, true)!)).toEqual(sorted(POD1_SELECTORS));
  });

  it('refuses a container id listed in two pods', () => {
    const pods = fixturePods();
    pods[1]!['status'].containerStatuses[0].containerID = `docker://${C_API}`;
    expect(() => matchWorkload(list(pods), { containerId: C_API, podUid: undefined }, false)).toThrow(
      expect.objectContaining({ code: 'duplicate_container', message: expect.stringMatching(/^k8s: two pods found with same container Id/) }),
    );
    // With the pod UID known, the other pod is not considered.
    expect(matchWorkload(list(pods), { containerId: C_API, podUid: POD1 }, false)).toContain('container-name:api');
  });
});
