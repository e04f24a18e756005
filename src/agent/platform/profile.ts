/**
 * What the host says it is, from the probe's answers: a pure function, so every vendor's DMI
 * strings are a table test. The strings are the vendors' documented ones:
 * - AWS: sys_vendor "Amazon EC2" on Nitro; on Xen-based instances product_version ends in
 *   ".amazon" and the UUID (product_uuid, /sys/hypervisor/uuid) begins with "ec2", possibly
 *   byte-swapped ("Identify EC2 Linux instances", AWS EC2 User Guide).
 * - GCP: sys_vendor "Google", product_name "Google Compute Engine" ("Detect if a VM runs in
 *   Compute Engine", Google Cloud docs).
 * - Azure: chassis_asset_tag 7783-7084-3265-9085-8269-3286-77 on every VM; Hyper-V alone reports
 *   "Microsoft Corporation" / "Virtual Machine" without it (Azure "Detect if running in Azure").
 */
import type { HostFacts, PathState, ProbePaths } from './facts.js';

export type Cloud = 'aws' | 'gcp' | 'azure' | 'none' | 'unknown';

export const AZURE_ASSET_TAG = '7783-7084-3265-9085-8269-3286-77';

/** A path the report looked at and what it found; `undefined` state: the probe did not answer. */
export interface CheckedPath {
  readonly path: string;
  readonly state: PathState | undefined;
}

export interface NodeProfile {
  readonly cloud: Cloud;
  /** systeminformation's hypervisor name, "yes" when it only knows the host is virtual, "not-detected", "unknown". */
  readonly virtualization: string;
  readonly container: 'docker' | 'not-detected' | 'unknown';
  /** DMI vendor and product as reported; "" when the host reports none. */
  readonly manufacturer: string;
  readonly model: string;
  /** Hyper-V without Azure's asset tag: azure_msi's warning says so. */
  readonly hyperV: boolean;
  readonly tpm: readonly CheckedPath[];
  readonly k8sTokens: readonly CheckedPath[];
}

const lower = (s: string | undefined): string => (s ?? '').trim().toLowerCase();

/** "ec2…" as written, or with the first field's bytes swapped (little-endian SMBIOS). */
export function isEc2Uuid(uuid: string | undefined): boolean {
  const u = lower(uuid);
  if (u.startsWith('ec2')) return true;
  const first = /^([0-9a-f]{8})-/.exec(u)?.[1];
  return first !== undefined && (first.match(/../g) ?? []).reverse().join('').startsWith('ec2');
}

function cloudOf(f: HostFacts): Cloud {
  const s = f.system;
  const c = f.chassis;
  if (c?.assetTag.trim() === AZURE_ASSET_TAG) return 'azure';
  const vendor = lower(s?.manufacturer);
  const chassisVendor = lower(c?.manufacturer);
  if (vendor.startsWith('amazon') || chassisVendor.startsWith('amazon') || lower(s?.version).endsWith('.amazon') || isEc2Uuid(s?.uuid) || isEc2Uuid(f.hypervisorUuid)) {
    return 'aws';
  }
  if (vendor === 'google' || chassisVendor === 'google' || lower(s?.model) === 'google compute engine') return 'gcp';
  // A vendor we know is no cloud's; no vendor at all (no DMI: masked /sys, microVMs, many ARM boards) says nothing.
  return vendor !== '' || chassisVendor !== '' ? 'none' : 'unknown';
}

function isHyperV(f: HostFacts): boolean {
  return lower(f.system?.manufacturer) === 'microsoft corporation' && lower(f.system?.model) === 'virtual machine';
}

function virtualizationOf(f: HostFacts): string {
  const s = f.system;
  if (s === undefined) return 'unknown';
  if (s.virtualHost) return s.virtualHost;
  // systeminformation names no hypervisor for Hyper-V on Linux, though its DMI strings are plain.
  if (isHyperV(f)) return 'Hyper-V';
  return s.virtual ? 'yes' : 'not-detected';
}

export function nodeProfile(f: HostFacts, paths: ProbePaths): NodeProfile {
  const checked = (ps: readonly string[]): CheckedPath[] => ps.map((path) => ({ path, state: f.paths.get(path) }));
  return {
    cloud: cloudOf(f),
    virtualization: virtualizationOf(f),
    container: f.system === undefined ? 'unknown' : f.system.model === 'Docker Container' ? 'docker' : 'not-detected',
    manufacturer: (f.system?.manufacturer ?? '').trim(),
    model: (f.system?.model ?? '').trim(),
    hyperV: isHyperV(f),
    tpm: checked(paths.tpm),
    k8sTokens: checked(paths.k8sTokens),
  };
}

/** "/dev/tpmrm0", "/dev/tpm0(no-access)", "a,b", "none", or "unknown" when no check answered. */
export function describePaths(ps: readonly CheckedPath[], firstOnly: boolean): string {
  if (ps.length > 0 && ps.every((p) => p.state === undefined)) return 'unknown';
  const found = ps.filter((p) => p.state === 'usable' || p.state === 'denied');
  if (found.length === 0) return 'none';
  const usable = found.filter((p) => p.state === 'usable');
  const show = (p: CheckedPath): string => (p.state === 'usable' ? p.path : `${p.path}(no-access)`);
  return firstOnly ? show(usable[0] ?? found[0]!) : found.map(show).join(',');
}
