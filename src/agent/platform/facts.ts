/**
 * What the platform report knows about the host, and the seam it learns it through. The real
 * probe (./host-probe.ts) asks systeminformation in a child process and stats files; tests hand in
 * the answers. Every question is bounded by one deadline: a probe that hangs or throws leaves its
 * answer undefined, which the report prints as "unknown", and start-up never waits on it.
 */
import type { Clock } from '../../clock.js';

/** The fields of systeminformation's system() the report reads (lib/system.js, v5). */
export interface SystemAnswer {
  /** DMI sys_vendor: "Amazon EC2", "Google", "Microsoft Corporation", "QEMU", "" when DMI is absent. */
  readonly manufacturer: string;
  /** DMI product_name ("m5.large", "Google Compute Engine", "Virtual Machine"), or "Docker Container" when /.dockerenv exists. */
  readonly model: string;
  /** DMI product_version ("4.11.amazon" on Xen-based EC2). */
  readonly version?: string;
  /** DMI product_uuid, lowercased; readable by root only, so often "". */
  readonly uuid?: string;
  /** systeminformation's guess from DMI, disk ids and dmesg. */
  readonly virtual: boolean;
  /** "KVM", "QEMU", "Xen", "VMware", "VirtualBox", ... when it could name the hypervisor. */
  readonly virtualHost?: string;
}

/** The fields of systeminformation's chassis() the report reads. */
export interface ChassisAnswer {
  readonly manufacturer: string;
  /** DMI chassis_asset_tag: Azure sets 7783-7084-3265-9085-8269-3286-77 on every VM. */
  readonly assetTag: string;
}

/** What this process may do with a path: a TPM needs read and write, a token file read. */
export type PathState = 'usable' | 'denied' | 'absent';

/** The injected seam: each call may be slow, hang or throw; gatherFacts bounds them. */
export interface HostProbe {
  system(): Promise<SystemAnswer>;
  chassis(): Promise<ChassisAnswer>;
  /** /sys/hypervisor/uuid (Xen guests, world-readable; "ec2…" on Xen-based EC2), undefined when absent. */
  hypervisorUuid(): Promise<string | undefined>;
  /** `mode` "rw" for devices, "r" for files to read. */
  access(path: string, mode: 'r' | 'rw'): Promise<PathState>;
  /** Stops whatever the probe still runs (the systeminformation child). */
  close(): void;
}

/** The paths the report checks, from the defaults and the configured attestor (./paths.ts). */
export interface ProbePaths {
  /** TPM devices, in the order spire-agent's tpm_devid prefers them. */
  readonly tpm: readonly string[];
  /** Kubernetes service-account token files (the projected one first). */
  readonly k8sTokens: readonly string[];
}

/** Everything the pure report reads. `undefined` means the probe did not answer in time (or threw). */
export interface HostFacts {
  readonly system: SystemAnswer | undefined;
  readonly chassis: ChassisAnswer | undefined;
  readonly hypervisorUuid: string | undefined;
  readonly paths: ReadonlyMap<string, PathState | undefined>;
}

/** Long enough for a loaded 2-CPU host (the child takes ~0.2 s idle), short enough for `validate`. */
export const DEFAULT_PROBE_TIMEOUT_MS = 5_000;

/** Asks every question at once and keeps what arrives before the deadline. */
export async function gatherFacts(probe: HostProbe, paths: ProbePaths, o: { clock: Clock; timeoutMs?: number }): Promise<HostFacts> {
  let cancel: (() => void) | undefined;
  const deadline = new Promise<undefined>((resolve) => {
    cancel = o.clock.setTimer(o.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS, () => resolve(undefined));
  });
  const bounded = <T>(ask: () => Promise<T>): Promise<T | undefined> => {
    let answer: Promise<T | undefined>;
    try {
      answer = ask().catch(() => undefined);
    } catch {
      answer = Promise.resolve(undefined);
    }
    return Promise.race([answer, deadline]);
  };
  const all = [...new Set([...paths.tpm, ...paths.k8sTokens])];
  const modeOf = (p: string): 'r' | 'rw' => (paths.tpm.includes(p) ? 'rw' : 'r');
  try {
    const [system, chassis, hypervisorUuid, states] = await Promise.all([
      bounded(() => probe.system()),
      bounded(() => probe.chassis()),
      bounded(() => probe.hypervisorUuid()),
      Promise.all(all.map((p) => bounded(() => probe.access(p, modeOf(p))))),
    ]);
    return { system, chassis, hypervisorUuid, paths: new Map(all.map((p, i) => [p, states[i]])) };
  } finally {
    cancel?.();
    probe.close();
  }
}
