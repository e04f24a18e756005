/**
 * REAL cgroups for container-attestation tests: root creates cgroup v1 directories
 * shaped like the ones Docker or the kubelet create (`/docker/<id>`,
 * `/kubepods/burstable/pod<uid>/<id>`, the systemd driver's `….slice/cri-containerd-<id>.scope`)
 * and starts real processes inside them, so the kernel itself writes the
 * `/proc/<pid>/cgroup` lines the agent reads. Only the container engine and the kubelet
 * are fakes (test/helpers/fake-docker.ts, fake-kubelet.ts); the cgroups are not.
 *
 * The wrapper `sh -c 'echo $$ > <dir>/cgroup.procs && exec "$@"'` moves the shell into
 * the cgroup and then execs the workload, so the workload is in the cgroup before its
 * first instruction (and therefore before it connects to the agent).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { extractFromCgroups } from '../../src/proc/container-info.js';
import { AGENT_MAIN, collect, type CliResult } from './agent-process.js';

/** The v1 hierarchy the workloads are placed in; only it is touched. */
export const HIERARCHY = 'pids';
export const CGROUP_MOUNT = `/sys/fs/cgroup/${HIERARCHY}`;

export const containerId = (): string => randomBytes(32).toString('hex');
export const podUid = (): string => randomUUID();

/** The cgroupfs driver's path of a pod's container: `/kubepods/<qos>/pod<uid>/<id>`. */
export const kubepodsPath = (uid: string, id: string, qos = 'burstable'): string => `/kubepods/${qos}/pod${uid}/${id}`;

/** The systemd driver's path: the pod UID with '_' (systemd slice names cannot hold '-'). */
export const kubepodsSystemdPath = (uid: string, id: string, qos = 'burstable'): string =>
  `/kubepods.slice/kubepods-${qos}.slice/kubepods-${qos}-pod${uid.replaceAll('-', '_')}.slice/cri-containerd-${id}.scope`;

/**
 * Why real cgroups cannot be used here, or undefined if they can: root, a writable v1
 * `pids` hierarchy, a process can be moved into a new cgroup, and the test runner itself
 * is not in a container cgroup (its lines would then disagree with the workload's).
 */
export function cgroupsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root: creating cgroups needs root';
  if (!existsSync(join(CGROUP_MOUNT, 'cgroup.procs'))) return `no cgroup v1 ${HIERARCHY} hierarchy at ${CGROUP_MOUNT}`;
  try {
    const own = readFileSync('/proc/self/cgroup', 'utf8');
    if (extractFromCgroups(own).containerId !== undefined) return 'the test runner already runs in a container cgroup';
  } catch (err) {
    return `cannot read /proc/self/cgroup: ${(err as Error).message}`;
  }
  const probe = join(CGROUP_MOUNT, `spiffe-agent-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    mkdirSync(probe);
  } catch (err) {
    return `cannot create a cgroup (${(err as Error).message}); cgroupfs read-only?`;
  }
  try {
    const out = execFileSync('/bin/sh', ['-c', 'echo $$ > "$0" && cat /proc/self/cgroup', join(probe, 'cgroup.procs')], { encoding: 'utf8' });
    if (!out.includes(`:${HIERARCHY}:/${probe.slice(CGROUP_MOUNT.length + 1)}`)) return `moving a process into ${probe} did not show in /proc/self/cgroup`;
  } catch (err) {
    return `cannot move a process into a new cgroup: ${(err as Error).message}`;
  } finally {
    rmdirRetry(probe);
  }
  return undefined;
}

function rmdirRetry(dir: string): boolean {
  // A just-killed process may still be listed for a moment.
  for (let i = 0; i < 50; i++) {
    try {
      rmdirSync(dir);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return true;
      if (code === 'ENOTEMPTY') return false; // another run's sibling: not ours to remove
      if (code !== 'EBUSY') throw err;
      execFileSync('/bin/sleep', ['0.05']);
    }
  }
  return false;
}

export interface CgroupDir {
  /** The path as /proc/<pid>/cgroup shows it, e.g. `/docker/<id>`. */
  readonly path: string;
  /** The directory in cgroupfs. */
  readonly dir: string;
}

/** Creates cgroups, runs processes in them, and removes both (processes first, then directories leaf-first). */
export class CgroupSandbox {
  private readonly created: string[] = [];
  private readonly children = new Set<ChildProcess>();

  create(path: string): CgroupDir {
    const parts = path.split('/').filter((p) => p !== '');
    let dir = CGROUP_MOUNT;
    for (const p of parts) {
      dir = join(dir, p);
      if (!existsSync(dir)) {
        mkdirSync(dir);
        this.created.push(dir);
      }
    }
    return { path: `/${parts.join('/')}`, dir };
  }

  /**
   * Starts `command args…` inside the cgroup. With ids, the cgroup's cgroup.procs is
   * handed to that uid so the unprivileged process can move itself in.
   */
  spawnIn(cg: CgroupDir, command: string, args: string[], ids: { uid?: number; gid?: number } = {}): ChildProcess {
    const procs = join(cg.dir, 'cgroup.procs');
    if (ids.uid !== undefined) chownSync(procs, ids.uid, ids.gid ?? ids.uid);
    const child = spawn('/bin/sh', ['-c', 'echo $$ > "$0" && exec "$@"', procs, command, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      ...ids,
    });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** `spiffe-agent <args>` inside the cgroup (for long-running ones, e.g. `api watch`). */
  spawnCliIn(cg: CgroupDir, args: string[], ids: { uid?: number; gid?: number } = {}): ChildProcess {
    return this.spawnIn(cg, process.execPath, [AGENT_MAIN, ...args], ids);
  }

  /** `spiffe-agent <args>` inside the cgroup, to completion; `pid` is the workload's pid. */
  cliIn(cg: CgroupDir, args: string[], ids: { uid?: number; gid?: number } = {}, timeoutMs = 15_000): Promise<CliResult & { pid: number }> {
    const child = this.spawnCliIn(cg, args, ids);
    return collect(child, timeoutMs).then((r) => ({ ...r, pid: child.pid! }));
  }

  async cleanup(): Promise<void> {
    const waits = [...this.children].map(
      (c) =>
        new Promise<void>((r) => {
          if (c.exitCode !== null || c.signalCode !== null) return r();
          c.once('exit', () => r());
          c.kill('SIGKILL');
        }),
    );
    await Promise.all(waits);
    for (const dir of this.created.splice(0).reverse()) {
      // Anything still inside (a grandchild) goes back to the root cgroup first.
      try {
        for (const pid of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
          try {
            writeFileSync(join(CGROUP_MOUNT, 'cgroup.procs'), pid);
          } catch {
            /* exited meanwhile */
          }
        }
      } catch {
        /* already gone */
      }
      rmdirRetry(dir);
    }
  }
}

/** The pids-hierarchy line of /proc/<pid>/cgroup, or '' once the process is gone. */
export function readCgroup(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cgroup`, 'utf8')
      .split('\n')
      .find((l) => l.split(':')[1] === HIERARCHY) ?? '';
  } catch {
    return '';
  }
}
