/**
 * FAKE host answers for the platform report: no EC2, GCE or Azure VM, bare-metal server or TPM is
 * reachable from CI. Each answer has the shape systeminformation 5.33's system() and chassis() return
 * (their own .d.ts types, so a field renamed upstream breaks the build), filled with the DMI strings
 * the vendors document:
 * - AWS "Identify EC2 Linux instances" (EC2 User Guide): sys_vendor/chassis_vendor "Amazon EC2" and
 *   chassis_asset_tag "Amazon EC2" on Nitro; product_version "4.11.amazon" and a UUID beginning
 *   "ec2" (/sys/hypervisor/uuid) on Xen.
 * - Google "Detect if a VM is running in Compute Engine": sys_vendor "Google", product_name
 *   "Google Compute Engine".
 * - Azure "Detect if a VM is running in Azure" / Hyper-V: "Microsoft Corporation", "Virtual
 *   Machine", chassis_asset_tag 7783-7084-3265-9085-8269-3286-77 on Azure only.
 * What systeminformation derives (virtual, virtualHost, "Docker Container") follows lib/system.js.
 */
import type { Systeminformation } from 'systeminformation';
import type { HostProbe, PathState } from '../../src/agent/platform/facts.js';

type Sys = Systeminformation.SystemData;
type Chassis = Systeminformation.ChassisData;

const sys = (o: Partial<Sys>): Sys => ({ manufacturer: '', model: 'Computer', version: '', serial: '-', uuid: '', sku: '-', virtual: false, ...o });
const chassis = (o: Partial<Chassis>): Chassis => ({ manufacturer: '', model: '', type: '', version: '', serial: '', assetTag: '', sku: '', ...o });

export interface HostAnswers {
  readonly system: Sys;
  readonly chassis: Chassis;
  readonly hypervisorUuid?: string;
}

export const HOSTS = {
  /** Nitro, agent as root: dmidecode gives the UUID, dmesg "Hypervisor detected: KVM". */
  ec2Nitro: {
    system: sys({ manufacturer: 'Amazon EC2', model: 'm5.large', serial: 'ec2e1916-9099-7caf-fd21-012345abcdef', uuid: 'ec2e1916-9099-7caf-fd21-012345abcdef', sku: '', virtual: true, virtualHost: 'KVM' }),
    chassis: chassis({ manufacturer: 'Amazon EC2', type: 'Other', assetTag: 'Amazon EC2' }),
  },
  /** Xen-based EC2 (t2), agent not root: no product_uuid, but /sys/hypervisor/uuid is world-readable. */
  ec2Xen: {
    system: sys({ manufacturer: 'Xen', model: 'HVM domU', version: '4.11.amazon', virtual: true, virtualHost: 'Xen' }),
    chassis: chassis({ manufacturer: 'Xen', type: 'Other' }),
    hypervisorUuid: 'ec2f8e4a-5e3b-2d2c-4f7e-0a1b2c3d4e5f',
  },
  /** GCE, agent not root: no dmesg, so systeminformation does not call it virtual. */
  gce: {
    system: sys({ manufacturer: 'Google', model: 'Google Compute Engine' }),
    chassis: chassis({ manufacturer: 'Google', type: 'Other' }),
  },
  /** systeminformation lists "virtual machine" as virtual but names no host on Linux. */
  azure: {
    system: sys({ manufacturer: 'Microsoft Corporation', model: 'Virtual Machine', version: '7.0', virtual: true }),
    chassis: chassis({ manufacturer: 'Microsoft Corporation', type: 'Desktop', version: '7.0', assetTag: '7783-7084-3265-9085-8269-3286-77' }),
  },
  /** On-premises Hyper-V: the same strings without Azure's asset tag. */
  hyperV: {
    system: sys({ manufacturer: 'Microsoft Corporation', model: 'Virtual Machine', version: '7.0', virtual: true }),
    chassis: chassis({ manufacturer: 'Microsoft Corporation', type: 'Desktop', version: '7.0' }),
  },
  bareMetal: {
    system: sys({ manufacturer: 'Dell Inc.', model: 'PowerEdge R640' }),
    chassis: chassis({ manufacturer: 'Dell Inc.', type: 'Rack Mount Chassis', assetTag: 'IT-00042' }),
  },
  /** QEMU/KVM guest: systeminformation finds "_QEMU_" disk ids. */
  qemu: {
    system: sys({ manufacturer: 'QEMU', model: 'Standard PC (Q35 + ICH9, 2009)', version: 'pc-q35-8.2', virtual: true, virtualHost: 'QEMU' }),
    chassis: chassis({ manufacturer: 'QEMU', type: 'Other', version: 'pc-q35-8.2' }),
  },
  /** Docker on a laptop with /sys/class/dmi masked: /.dockerenv overrides the model, no vendor at all. */
  docker: {
    system: sys({ model: 'Docker Container' }),
    chassis: chassis({}),
  },
  /** Docker on EC2 with sysfs visible: the vendor survives, the model is systeminformation's. */
  dockerOnEc2: {
    system: sys({ manufacturer: 'Amazon EC2', model: 'Docker Container' }),
    chassis: chassis({ manufacturer: 'Amazon EC2', type: 'Other', assetTag: 'Amazon EC2' }),
  },
} satisfies Record<string, HostAnswers>;

/** An answer, or a call that never settles, or one that fails (rejects; `throw` throws synchronously). */
export type Answer<T> = T | 'hang' | 'reject' | 'throw';

export interface FakeProbeOptions {
  readonly system?: Answer<Sys>;
  readonly chassis?: Answer<Chassis>;
  readonly hypervisorUuid?: Answer<string | undefined>;
  /** Paths that exist and what this process may do with them; others are absent. */
  readonly paths?: Readonly<Record<string, Answer<PathState>>>;
}

export function fakeProbe(o: FakeProbeOptions): HostProbe & { closed: number; asked: number } {
  const answer = <T>(a: Answer<T>): Promise<T> => {
    if (a === 'hang') return new Promise<T>(() => {});
    if (a === 'reject') return Promise.reject(new Error('fake probe failure'));
    if (a === 'throw') throw new Error('fake probe threw');
    return Promise.resolve(a);
  };
  const probe = {
    closed: 0,
    /** system() calls: the report has started. */
    asked: 0,
    system: () => (probe.asked++, answer(o.system ?? HOSTS.bareMetal.system)),
    chassis: () => answer(o.chassis ?? HOSTS.bareMetal.chassis),
    hypervisorUuid: () => answer(o.hypervisorUuid),
    access: (path: string) => answer(o.paths?.[path] ?? 'absent'),
    close: () => void probe.closed++,
  };
  return probe;
}

export function probeFor(host: HostAnswers, paths: FakeProbeOptions['paths'] = {}): HostProbe & { closed: number; asked: number } {
  return fakeProbe({ system: host.system, chassis: host.chassis, hypervisorUuid: host.hypervisorUuid, paths });
}
