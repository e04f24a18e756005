/**
 * Which container (and Kubernetes pod) a process runs in, read from its cgroup
 * paths: SPIRE's "new container locator". Used by the docker and k8s attestors.
 *
 * The container ID is the last whole-word run of 64 hex characters found walking a
 * cgroup path backwards segment by segment; the pod UID is the first `pod<UUID>` found
 * walking on backwards from there. This covers Docker, containerd, CRI-O and Podman
 * under the cgroupfs and systemd drivers, cgroup v1/v2/hybrid, and cgroup namespaces.
 */
import { SpiffeAgentError, type ErrorCodes } from '../errors.js';
import type { Logger } from '../telemetry/logger.js';
import type { ProcReader } from './proc-reader.js';

export interface ContainerInfo {
  readonly containerId: string | undefined;
  readonly podUid: string | undefined;
}

declare module '../errors.js' {
  interface ErrorCodes {
    container: 'container_conflict' | 'cgroup_malformed' | 'mountinfo_malformed';
  }
}

/**
 * Codes: `container_conflict` (two different container IDs or pod UIDs),
 * `cgroup_malformed` / `mountinfo_malformed` (a line that is not in the kernel's format).
 * They fail the attestor that asked (docker, k8s), which the fan-out logs and drops.
 */
export class ContainerInfoError extends SpiffeAgentError<ErrorCodes['container']> {}

export interface CgroupEntry {
  readonly hierarchyId: string;
  readonly controllers: string;
  readonly path: string;
}

const NONE: ContainerInfo = Object.freeze({ containerId: undefined, podUid: undefined });

// \b is ASCII word/non-word in JS as in Go's RE2, so `docker-<id>.scope` and `pod<uid>.slice`
// match but `x<id>` or `<id>_y` do not.
const CONTAINER_ID = /\b([0-9a-fA-F]{64})\b/;
// The systemd driver cannot use '-' inside a slice name, so the kubelet writes the pod UID with '_'.
const POD_UID = /\bpod([0-9a-fA-F]{8}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{12})\b/;

/** `hierarchy-ID:controller-list:path`, split on the first two ':' only (paths may hold ':'). */
export function parseCgroupFile(text: string): CgroupEntry[] {
  const out: CgroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const a = line.indexOf(':');
    const b = a < 0 ? -1 : line.indexOf(':', a + 1);
    if (b < 0) {
      throw new ContainerInfoError(
        'cgroup_malformed',
        `containerinfo: invalid cgroup entry ${JSON.stringify(line)}: expected "hierarchy-ID:controller-list:path"`,
      );
    }
    out.push({ hierarchyId: line.slice(0, a), controllers: line.slice(a + 1, b), path: line.slice(b + 1) });
  }
  return out;
}

/**
 * One cgroup path or mount root. Walks back segment by segment and stops at the first
 * empty one (the leading '/'), as SPIRE does.
 */
export function extractFromPath(path: string): ContainerInfo {
  const segments = path.split('/');
  let i = segments.length - 1;
  let containerId: string | undefined;
  let rest = '';
  for (; i >= 0; i--) {
    const seg = segments[i] ?? '';
    if (seg === '') return NONE;
    const m = CONTAINER_ID.exec(seg);
    if (m) {
      containerId = m[1];
      // What precedes the id in its segment stays searchable: `…pod<uid>.slice:cri-containerd:<id>`.
      rest = seg.slice(0, m.index);
      break;
    }
  }
  if (containerId === undefined) return NONE;
  for (let seg = rest, j = i; ; seg = segments[--j] ?? '') {
    if (seg === '') {
      if (j !== i) break;
      continue;
    }
    const m = POD_UID.exec(seg);
    if (m) return { containerId, podUid: (m[1] ?? '').replaceAll('_', '-') };
  }
  return { containerId, podUid: undefined };
}

/**
 * Merges per-path answers. A path with a pod UID wins over one without: under Kind on a
 * Docker host one line names the pod's container and another only the Kind node's
 * container. Paths with no container ID (e.g. `0::/` in hybrid mode, or root mounts) say
 * nothing and are skipped. Any other disagreement is refused: choosing would be a guess.
 */
class Merger {
  containerId: string | undefined;
  podUid: string | undefined;

  add(found: ContainerInfo, where: string): void {
    if (found.containerId === undefined) return;
    if (this.podUid !== undefined && found.podUid === undefined) return;
    if (this.podUid === undefined && found.podUid !== undefined) {
      this.podUid = found.podUid;
      this.containerId = found.containerId;
      return;
    }
    if (found.podUid !== undefined && found.podUid !== this.podUid) {
      throw conflict('pod UIDs', this.podUid, found.podUid, where);
    }
    if (this.containerId !== undefined && found.containerId !== this.containerId) {
      throw conflict('container IDs', this.containerId, found.containerId, where);
    }
    this.containerId = found.containerId;
  }

  result(): ContainerInfo {
    return this.containerId === undefined ? NONE : { containerId: this.containerId, podUid: this.podUid };
  }
}

function conflict(what: string, a: string | undefined, b: string | undefined, where: string): ContainerInfoError {
  return new ContainerInfoError(
    'container_conflict',
    `containerinfo: multiple ${what} found (${JSON.stringify(a)}, ${JSON.stringify(b)}) in ${where}; refusing to pick one`,
  );
}

export function extractFromCgroups(cgroupFileText: string): ContainerInfo {
  const m = new Merger();
  for (const e of parseCgroupFile(cgroupFileText)) m.add(extractFromPath(e.path), `cgroup path ${JSON.stringify(e.path)}`);
  return m.result();
}

export interface MountinfoEntry {
  readonly root: string;
  readonly mountPoint: string;
  readonly fsType: string;
}

/**
 * proc(5) mountinfo lines, split on single spaces so an empty mount source survives;
 * octal escapes (`\040`) in root and mount point are decoded.
 */
export function parseMountinfo(text: string): MountinfoEntry[] {
  const out: MountinfoEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    const fsType = sep < 0 ? undefined : f[sep + 1];
    if (sep < 0 || fsType === undefined || fsType === '') {
      throw new ContainerInfoError('mountinfo_malformed', `containerinfo: invalid mountinfo line ${JSON.stringify(line)}`);
    }
    out.push({ root: unescapeOctal(f[3] ?? ''), mountPoint: unescapeOctal(f[4] ?? ''), fsType });
  }
  return out;
}

function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Roots of cgroup/cgroup2 mounts; a root of "/" names nothing and is ignored. */
export function extractFromMountinfo(mountinfoText: string): ContainerInfo {
  const m = new Merger();
  for (const e of parseMountinfo(mountinfoText)) {
    if (e.fsType !== 'cgroup' && e.fsType !== 'cgroup2') continue;
    if (e.root === '/') continue;
    m.add(extractFromPath(e.root), `mount root ${JSON.stringify(e.root)}`);
  }
  return m.result();
}

export interface ContainerInfoOptions {
  /** Logs every cgroup path and mount root looked at (verbose_container_locator_logs). */
  readonly verboseLog?: Logger | undefined;
}

/**
 * The kernel writes /proc/<pid>/cgroup and the workload cannot forge it, so it decides.
 * mountinfo reflects the workload's own mount namespace (a bind-mounted foreign cgroup
 * would impersonate another container), so it is read only when cgroup names no container,
 * e.g. for a process in the agent's own pod under a cgroup namespace.
 * Read errors (process gone, permission) propagate as ProcError.
 */
export async function containerInfoForPid(proc: ProcReader, pid: number, opts: ContainerInfoOptions = {}): Promise<ContainerInfo> {
  const verbose = opts.verboseLog?.child({ pid });
  return containerInfoFromCgroupText(await proc.cgroup(pid), () => proc.mountinfo(pid), { verboseLog: verbose });
}

/** The same decision for a cgroup file already read; mountinfo is read only if needed. */
export async function containerInfoFromCgroupText(
  cgroupText: string,
  readMountinfo: () => Promise<string>,
  opts: ContainerInfoOptions = {},
): Promise<ContainerInfo> {
  const log = opts.verboseLog;
  if (log) {
    const entries = parseCgroupFile(cgroupText);
    entries.forEach((e, i) => log.debug({ index: i + 1, total: entries.length, path: e.path }, 'PID cgroup enumerated'));
  }
  const fromCgroups = extractFromCgroups(cgroupText);
  if (fromCgroups.containerId !== undefined) return fromCgroups;
  const mountText = await readMountinfo();
  if (log) {
    const mounts = parseMountinfo(mountText);
    mounts.forEach((e, i) => log.debug({ index: i + 1, total: mounts.length, type: e.fsType, root: e.root }, 'PID mount enumerated'));
  }
  return extractFromMountinfo(mountText);
}

export interface PodmanSocketChoice {
  readonly podman: boolean;
  /** Set for rootless Podman: the uid from a `/user-<uid>.slice/` segment. */
  readonly rootlessUid: number | undefined;
}

const PODMAN_PATH = /libpod-|\/libpod\//;
const USER_SLICE = /\/user-(\d+)\.slice\//;

/**
 * Podman if a cgroup path contains `libpod-` or `/libpod/`; the first such path decides.
 * A `/user-<uid>.slice/` segment in it means rootless Podman run by that uid; a uid that
 * does not fit in 32 bits is ignored (rootful socket), as in SPIRE.
 */
export function podmanSocketFor(cgroupFileText: string): PodmanSocketChoice {
  for (const e of parseCgroupFile(cgroupFileText)) {
    if (!PODMAN_PATH.test(e.path)) continue;
    const m = USER_SLICE.exec(e.path);
    const uid = m ? Number(m[1]) : NaN;
    return { podman: true, rootlessUid: Number.isSafeInteger(uid) && uid <= 0xffff_ffff ? uid : undefined };
  }
  return { podman: false, rootlessUid: undefined };
}
