import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  ContainerInfoError,
  containerInfoForPid,
  extractFromCgroups,
  extractFromMountinfo,
  podmanSocketFor,
} from '../../../src/proc/container-info.js';
import { ProcReader } from '../../../src/proc/proc-reader.js';

// Identifiers made up for these tests (random hex / UUIDv4).
const A = '53250ec8a8a56557b05875d05d1322ca5b07b18102b5799b096397c584182963';
const B = 'ac3365b8a04406f70ecb18c521b7400d839be2fdf8d27a4518f1acadadf2ba1f';
const K = 'cbdce506da9cc54ae5abcd3af65ff193041545f9e5d51c8073c04aea3b01e03b';
const POD = '09c4d942-1414-4798-877f-28806d4cded4';
const POD_ = POD.replaceAll('-', '_');
const POD2 = 'f336482c-889c-45bf-9bb5-665a86962469';

interface Case {
  readonly name: string;
  readonly cgroup: string;
  readonly want?: { containerId: string | undefined; podUid: string | undefined };
  readonly code?: string;
}

const none = { containerId: undefined, podUid: undefined };

const CASES: readonly Case[] = [
  // --- Docker ---
  {
    name: 'Docker, cgroupfs driver, cgroup v1',
    cgroup: `11:freezer:/docker/${A}\n10:devices:/docker/${A}\n4:memory:/docker/${A}\n1:name=systemd:/docker/${A}\n`,
    want: { containerId: A, podUid: undefined },
  },
  {
    name: 'Docker, systemd driver, cgroup v2',
    cgroup: `0::/system.slice/docker-${A}.scope\n`,
    want: { containerId: A, podUid: undefined },
  },
  {
    name: 'Docker, systemd driver, hybrid (v1 lines plus 0::/)',
    cgroup: `5:pids:/system.slice/docker-${A}.scope\n1:name=systemd:/system.slice/docker-${A}.scope\n0::/\n`,
    want: { containerId: A, podUid: undefined },
  },
  {
    name: 'Docker Desktop: nested docker path with text after the id',
    cgroup: `6:devices:/docker/${A}/docker/${A}/system.slice/containerd.service\n`,
    want: { containerId: A, podUid: undefined },
  },
  {
    name: 'Docker, systemd driver without the docker- prefix (RHEL)',
    cgroup: `4:devices:/system.slice/${A}.scope\n`,
    want: { containerId: A, podUid: undefined },
  },
  // --- Kubernetes, cgroupfs driver, QoS classes ---
  {
    name: 'k8s cgroupfs, burstable, v1',
    cgroup: `12:cpuset:/kubepods/burstable/pod${POD}/${K}\n1:name=systemd:/kubepods/burstable/pod${POD}/${K}\n`,
    want: { containerId: K, podUid: POD },
  },
  {
    name: 'k8s cgroupfs, besteffort, v2',
    cgroup: `0::/kubepods/besteffort/pod${POD}/${K}\n`,
    want: { containerId: K, podUid: POD },
  },
  {
    name: 'k8s cgroupfs, guaranteed (no QoS segment)',
    cgroup: `0::/kubepods/pod${POD}/${K}\n`,
    want: { containerId: K, podUid: POD },
  },
  // --- Kubernetes, systemd driver: '-' in pod UID escaped to '_' ---
  {
    name: 'k8s systemd + docker, burstable',
    cgroup: `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD_}.slice/docker-${K}.scope\n`,
    want: { containerId: K, podUid: POD },
  },
  {
    name: 'k8s systemd + containerd, besteffort, slash form',
    cgroup: `0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${POD_}.slice/cri-containerd-${K}.scope\n`,
    want: { containerId: K, podUid: POD },
  },
  {
    name: 'k8s systemd + containerd, colon form (v1, pod and id in one segment)',
    cgroup: `11:pids:/kubepods-besteffort-pod${POD_}.slice:cri-containerd:${K}\n1:name=systemd:/kubepods-besteffort-pod${POD_}.slice:cri-containerd:${K}\n`,
    want: { containerId: K, podUid: POD },
  },
  {
    name: 'k8s systemd + containerd, guaranteed (no QoS slice)',
    cgroup: `0::/kubepods.slice/kubepods-pod${POD_}.slice/cri-containerd-${K}.scope\n`,
    want: { containerId: K, podUid: POD },
  },
  {
    name: 'k8s + CRI-O, burstable',
    cgroup: `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD_}.slice/crio-${K}.scope\n`,
    want: { containerId: K, podUid: POD },
  },
  {
    name: 'k8s + CRI-O conmon-less path with a sub-cgroup after the scope',
    cgroup: `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD_}.slice/crio-${K}.scope/container\n`,
    want: { containerId: K, podUid: POD },
  },
  {
    name: 'CRI-O without pod in path (kubeedge)',
    cgroup: `0::/../crio-${K}.scope\n`,
    want: { containerId: K, podUid: undefined },
  },
  // --- Podman ---
  {
    name: 'Podman rootful, systemd',
    cgroup: `0::/machine.slice/libpod-${B}.scope/container\n`,
    want: { containerId: B, podUid: undefined },
  },
  {
    name: 'Podman rootless, systemd',
    cgroup: `0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${B}.scope\n`,
    want: { containerId: B, podUid: undefined },
  },
  {
    name: 'Podman rootless, cgroupfs',
    cgroup: `0::/user.slice/user-2000.slice/user@2000.service/user.slice/libpod/${B}\n`,
    want: { containerId: B, podUid: undefined },
  },
  // --- cgroup namespaces (agent in a pod) ---
  {
    name: 'cgroup namespace, workload in another pod',
    cgroup: `0::/../pod${POD}/${K}\n`,
    want: { containerId: K, podUid: POD },
  },
  {
    name: 'cgroup namespace, two levels up, systemd names',
    cgroup: `0::/../../kubepods-besteffort-pod${POD_}.slice/cri-containerd-${K}.scope\n`,
    want: { containerId: K, podUid: POD },
  },
  {
    name: 'Kind in Docker: the line with a pod wins over the Kind node container',
    cgroup: `1:cpuset:/docker/${A}/kubepods/besteffort/pod${POD}/${K}\n0::/docker/${A}/system.slice/containerd.service\n`,
    want: { containerId: K, podUid: POD },
  },
  {
    name: 'Kind in Docker, lines in the other order',
    cgroup: `0::/docker/${A}/system.slice/containerd.service\n1:cpuset:/docker/${A}/kubepods/besteffort/pod${POD}/${K}\n`,
    want: { containerId: K, podUid: POD },
  },
  // --- not containers ---
  { name: 'host process, cgroup v2 systemd session', cgroup: '0::/user.slice/user-1000.slice/session-4.scope\n', want: none },
  { name: 'host process, cgroup v1 root', cgroup: '3:cpuset:/\n2:memory:/\n1:name=systemd:/init.scope\n0::/init.scope\n', want: none },
  { name: 'a 63-hex segment is not a container id', cgroup: `0::/docker/${A.slice(1)}\n`, want: none },
  { name: 'a 65-hex run is not a container id', cgroup: `0::/docker/${A}f\n`, want: none },
  { name: 'an id glued to a word character is not whole-word', cgroup: `0::/docker/x${A}\n`, want: none },
  { name: 'empty file', cgroup: '', want: none },
  // --- refusals ---
  {
    name: 'two different container ids',
    cgroup: `10:devices:/docker/${A}\n4:devices:/system.slice/docker-${B}.scope\n`,
    code: 'container_conflict',
  },
  {
    name: 'two different pod uids',
    cgroup: `2:memory:/kubepods/besteffort/pod${POD}/${K}\n1:cpu:/kubepods/besteffort/pod${POD2}/${K}\n`,
    code: 'container_conflict',
  },
  { name: 'a line without two colons', cgroup: `0/docker/${A}\n`, code: 'cgroup_malformed' },
];

describe('extractFromCgroups', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    if (c.code !== undefined) {
      let err: unknown;
      try {
        extractFromCgroups(c.cgroup);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ContainerInfoError);
      expect((err as ContainerInfoError).code).toBe(c.code);
      expect((err as Error).message).toMatch(/^containerinfo: /);
      return;
    }
    expect(extractFromCgroups(c.cgroup)).toEqual(c.want);
  });

  it('names both ids when refusing a conflict', () => {
    expect(() => extractFromCgroups(`5:memory:/docker/${A}\n4:pids:/docker/${B}\n`)).toThrow(
      `containerinfo: multiple container IDs found ("${A}", "${B}")`,
    );
  });
});

describe('extractFromMountinfo', () => {
  const line = (root: string, fsType: string): string =>
    `37 25 0:32 ${root} /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime shared:13 - ${fsType} cgroup rw`;

  it('reads cgroup2 mount roots', () => {
    expect(extractFromMountinfo(line(`/kubepods/burstable/pod${POD}/${K}`, 'cgroup2') + '\n')).toEqual({ containerId: K, podUid: POD });
  });

  it('reads cgroup v1 mount roots and ignores roots of "/"', () => {
    const text = [line('/', 'cgroup'), line(`/docker/${A}`, 'cgroup'), line('/', 'cgroup')].join('\n');
    expect(extractFromMountinfo(text)).toEqual({ containerId: A, podUid: undefined });
  });

  it('ignores other filesystems even when their root looks like a container path', () => {
    expect(extractFromMountinfo(line(`/docker/${A}`, 'overlay'))).toEqual(none);
  });

  it('accepts an empty mount source (two spaces) and decodes octal escapes', () => {
    const text = `119 206 0:68 / /local rw,relatime - tmpfs  rw,size=8192k\n120 25 0:32 /my\\040dir/docker-${A}.scope /x rw - cgroup2 cgroup2 rw`;
    expect(extractFromMountinfo(text)).toEqual({ containerId: A, podUid: undefined });
  });

  it('refuses two different containers across mounts', () => {
    expect(() => extractFromMountinfo([line(`/docker/${A}`, 'cgroup'), line(`/docker/${B}`, 'cgroup')].join('\n'))).toThrow(
      expect.objectContaining({ code: 'container_conflict' }),
    );
  });

  it('refuses a line without the "-" separator', () => {
    expect(() => extractFromMountinfo('1 2 3 / / rw cgroup2 cgroup2 rw')).toThrow(expect.objectContaining({ code: 'mountinfo_malformed' }));
  });
});

describe('containerInfoForPid on fixture /proc trees', () => {
  const root = (name: string): ProcReader => new ProcReader(fileURLToPath(new URL(`../../fixtures/cgroups/${name}`, import.meta.url)));

  it.each([
    ['docker-v1-cgroupfs', 123, { containerId: A, podUid: undefined }],
    ['k8s-mountinfo-fallback', 123, { containerId: K, podUid: POD }],
    // mountinfo names another pod's container, but the kernel's cgroup file decides.
    ['mountinfo-impersonation', 123, { containerId: A, podUid: undefined }],
    ['host-process', 123, none],
    ['kind-in-docker', 123, { containerId: K, podUid: POD }],
    ['podman-rootless', 4242, { containerId: B, podUid: undefined }],
  ] as const)('%s', async (name, pid, want) => {
    expect(await containerInfoForPid(root(name), pid)).toEqual(want);
  });

  it('refuses a conflicting cgroup file', async () => {
    await expect(containerInfoForPid(root('conflict'), 123)).rejects.toMatchObject({ code: 'container_conflict' });
  });

  it('reports a missing process as ProcError process_gone', async () => {
    await expect(containerInfoForPid(root('host-process'), 999)).rejects.toMatchObject({ code: 'process_gone' });
  });

  it('logs every path looked at when verbose', async () => {
    const lines: Record<string, unknown>[] = [];
    const log: { debug: (o: unknown) => void; child: () => unknown } = { debug: (o) => lines.push(o as Record<string, unknown>), child: () => log };
    await containerInfoForPid(root('k8s-mountinfo-fallback'), 123, { verboseLog: log as never });
    expect(lines.filter((l) => 'path' in l)).toHaveLength(1);
    expect(lines.filter((l) => 'root' in l)).toHaveLength(5);
  });
});

describe('this machine', () => {
  it('reads the real /proc/self/cgroup consistently', async () => {
    const text = readFileSync('/proc/self/cgroup', 'utf8');
    const expected = extractFromCgroups(text);
    // eslint-disable-next-line no-console
    console.log(`/proc/self/cgroup:\n${text}→ ${JSON.stringify(expected)}`);
    const got = await containerInfoForPid(new ProcReader(), process.pid);
    if (expected.containerId === undefined) {
      // Not a container by cgroup; the mountinfo fallback decides, and must agree with itself.
      expect(got).toEqual(extractFromMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')));
    } else {
      expect(got).toEqual(expected);
      expect(got.containerId).toMatch(/^[0-9a-f]{64}$/i);
    }
  });
});

describe('podmanSocketFor', () => {
  it.each([
    ['Docker', `0::/system.slice/docker-${A}.scope`, { podman: false, rootlessUid: undefined }],
    ['rootful Podman', `0::/machine.slice/libpod-${B}.scope`, { podman: true, rootlessUid: undefined }],
    ['rootless Podman, systemd', `0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${B}.scope`, { podman: true, rootlessUid: 1000 }],
    ['rootless Podman, cgroupfs', `0::/user.slice/user-2000.slice/user@2000.service/user.slice/libpod/${B}`, { podman: true, rootlessUid: 2000 }],
    [
      'rootless Podman with a uid over 32 bits falls back to rootful',
      `0::/user.slice/user-4294967296.slice/user@4294967296.service/user.slice/libpod-${B}.scope`,
      { podman: true, rootlessUid: undefined },
    ],
    ['a host process of a user', '0::/user.slice/user-1000.slice/session-4.scope', { podman: false, rootlessUid: undefined }],
  ] as const)('%s', (_name, text, want) => {
    expect(podmanSocketFor(text + '\n')).toEqual(want);
  });
});
