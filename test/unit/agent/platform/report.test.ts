/**
 * The platform report from systeminformation's answers (FAKE answers, see test/helpers/platform-probe.ts):
 * the line for each kind of host, and the warning for each node attestor that cannot work there.
 */
import { describe, expect, it } from 'vitest';
import { FIT_RULES } from '../../../../src/agent/platform/fit-rules.js';
import { runPlatformReport, type ConfiguredAttestor } from '../../../../src/agent/platform/report.js';
import { NODE_ATTESTORS } from '../../../../src/attestation/node/catalog.js';
import { FakeClock } from '../../../helpers/fake-clock.js';
import { HOSTS, probeFor, type FakeProbeOptions, type HostAnswers } from '../../../helpers/platform-probe.js';

const TPM = { '/dev/tpmrm0': 'usable', '/dev/tpm0': 'usable' } as const;
const PSAT = '/var/run/secrets/tokens/spire-agent';
const SA = '/var/run/secrets/kubernetes.io/serviceaccount/token';

function report(host: HostAnswers, attestor?: string | ConfiguredAttestor, paths: FakeProbeOptions['paths'] = {}) {
  const a = typeof attestor === 'string' ? { name: attestor, data: {} } : attestor;
  return runPlatformReport({ probe: probeFor(host, paths), attestor: a, clock: new FakeClock() });
}

describe('platform report: the line says what the host reports', () => {
  it.each([
    ['EC2 (Nitro, root) with a TPM', HOSTS.ec2Nitro, TPM, 'cloud=aws virtualization=KVM container=not-detected manufacturer="Amazon EC2" model=m5.large tpm=/dev/tpmrm0 k8s_token=none node_attestor=none'],
    ['EC2 (Xen, not root): the hypervisor UUID', HOSTS.ec2Xen, {}, 'cloud=aws virtualization=Xen container=not-detected manufacturer=Xen model="HVM domU" tpm=none k8s_token=none node_attestor=none'],
    ['GCE', HOSTS.gce, {}, 'cloud=gcp virtualization=not-detected container=not-detected manufacturer=Google model="Google Compute Engine" tpm=none k8s_token=none node_attestor=none'],
    ['Azure', HOSTS.azure, {}, 'cloud=azure virtualization=Hyper-V container=not-detected manufacturer="Microsoft Corporation" model="Virtual Machine" tpm=none k8s_token=none node_attestor=none'],
    ['Hyper-V without the Azure asset tag', HOSTS.hyperV, {}, 'cloud=none virtualization=Hyper-V container=not-detected manufacturer="Microsoft Corporation" model="Virtual Machine" tpm=none k8s_token=none node_attestor=none'],
    ['bare metal with only /dev/tpm0', HOSTS.bareMetal, { '/dev/tpm0': 'usable' }, 'cloud=none virtualization=not-detected container=not-detected manufacturer="Dell Inc." model="PowerEdge R640" tpm=/dev/tpm0 k8s_token=none node_attestor=none'],
    ['QEMU/KVM guest', HOSTS.qemu, {}, 'cloud=none virtualization=QEMU container=not-detected manufacturer=QEMU model="Standard PC (Q35 + ICH9, 2009)" tpm=none k8s_token=none node_attestor=none'],
    ['a Docker container with no DMI, in a pod', HOSTS.docker, { [SA]: 'usable', [PSAT]: 'usable' }, `cloud=unknown virtualization=not-detected container=docker manufacturer=unknown model="Docker Container" tpm=none k8s_token=${PSAT},${SA} node_attestor=none`],
    ['a Docker container on EC2', HOSTS.dockerOnEc2, {}, 'cloud=aws virtualization=not-detected container=docker manufacturer="Amazon EC2" model="Docker Container" tpm=none k8s_token=none node_attestor=none'],
    ['a TPM this process may not open', HOSTS.bareMetal, { '/dev/tpmrm0': 'denied' }, 'cloud=none virtualization=not-detected container=not-detected manufacturer="Dell Inc." model="PowerEdge R640" tpm=/dev/tpmrm0(no-access) k8s_token=none node_attestor=none'],
  ] as const)('%s', async (_name, host, paths, line) => {
    const r = await report(host, undefined, paths);
    expect(r.line).toBe(line);
    expect(r.warnings).toEqual([]);
  });

  it.each([
    ['the system vendor', { system: { manufacturer: 'Amazon EC2' } }],
    ['the chassis vendor', { chassis: { manufacturer: 'Amazon EC2' } }],
    ['a Xen product version ending .amazon', { system: { manufacturer: 'Xen', version: '4.11.amazon' } }],
    ['the product UUID', { system: { manufacturer: 'Xen', uuid: 'ec2e1916-9099-7caf-fd21-012345abcdef' } }],
    ['the hypervisor UUID', { system: { manufacturer: 'Xen' }, hypervisorUuid: 'ec2e1916-9099-7caf-fd21-012345abcdef' }],
  ] as const)('each EC2 signal alone is enough: %s', async (_name, o) => {
    const blank = HOSTS.docker;
    const host = { system: { ...blank.system, model: 'Computer', ...('system' in o ? o.system : {}) }, chassis: { ...blank.chassis, ...('chassis' in o ? o.chassis : {}) }, hypervisorUuid: 'hypervisorUuid' in o ? o.hypervisorUuid : undefined };
    expect((await report(host)).fields.cloud).toBe('aws');
    expect((await report({ ...host, system: { ...host.system, manufacturer: 'Xen', version: '', uuid: '' }, chassis: blank.chassis, hypervisorUuid: undefined })).fields.cloud).toBe('none');
  });

  it.each([
    ['the system vendor', { manufacturer: 'Google', model: 'n2' }, ''],
    ['the product name', { manufacturer: 'Other', model: 'Google Compute Engine' }, ''],
    ['the chassis vendor', { manufacturer: 'Other', model: 'n2' }, 'Google'],
  ])('each GCE signal alone is enough: %s', async (_name, system, chassisVendor) => {
    const host = { system: { ...HOSTS.gce.system, ...system }, chassis: { ...HOSTS.gce.chassis, manufacturer: chassisVendor } };
    expect((await report(host)).fields.cloud).toBe('gcp');
  });

  it('byte-swapped EC2 UUIDs count too (little-endian SMBIOS)', async () => {
    const host = { ...HOSTS.qemu, system: { ...HOSTS.qemu.system, manufacturer: 'Xen', uuid: '45e12aec-dcd1-b213-94ed-01234567890a' } };
    expect((await report(host)).fields.cloud).toBe('aws');
    const other = { ...host, system: { ...host.system, uuid: '45e12aed-dcd1-b213-94ed-01234567890a' } };
    expect((await report(other)).fields.cloud).toBe('none');
  });

  it('names the configured attestor, and join_token needs nothing from the host', async () => {
    const r = await report(HOSTS.docker, 'join_token');
    expect(r.fields.node_attestor).toBe('join_token');
    expect(r.warnings).toEqual([]);
  });
});

const warned = async (host: HostAnswers, attestor: string | ConfiguredAttestor, paths: FakeProbeOptions['paths'] = {}) =>
  (await report(host, attestor, paths)).warnings.map((w) => w.message);

describe('platform report: a configured node attestor that cannot work here is a warning', () => {
  it.each([
    ['aws_iid', HOSTS.gce, 'NodeAttestor "aws_iid" may not work on this node: this host does not report Amazon EC2 (it reports "Google" "Google Compute Engine"); aws_iid needs the EC2 instance metadata service to sign an instance identity document; the agent tries it anyway'],
    ['aws_iid', HOSTS.qemu, 'this host does not report Amazon EC2 (it reports "QEMU" "Standard PC (Q35 + ICH9, 2009)")'],
    ['gcp_iit', HOSTS.ec2Nitro, 'NodeAttestor "gcp_iit" may not work on this node: this host does not report Google Compute Engine (it reports "Amazon EC2" "m5.large"); gcp_iit needs the GCE metadata server'],
    ['gcp_iit', HOSTS.bareMetal, 'does not report Google Compute Engine (it reports "Dell Inc." "PowerEdge R640")'],
    ['azure_msi', HOSTS.hyperV, "this host is a Hyper-V VM but lacks Azure's chassis asset tag 7783-7084-3265-9085-8269-3286-77, so it is not an Azure VM"],
    ['azure_msi', HOSTS.gce, 'this host does not report Microsoft Azure (it reports "Google" "Google Compute Engine"); azure_msi asks the Azure Instance Metadata Service'],
    ['tpm_devid', HOSTS.ec2Nitro, "no TPM device is visible to this process (/dev/tpmrm0, /dev/tpm0 absent): the host has no TPM 2.0, or a container without the device or systemd's PrivateDevices=yes hides it"],
    ['k8s_psat', HOSTS.docker, `no service account token at ${PSAT} (token_path): mount a projected serviceAccountToken volume there`],
  ])('%s on %#', async (name, host, message) => {
    const got = await warned(host, name);
    expect(got).toHaveLength(1);
    expect(got[0]).toContain(message);
    expect(got[0]).toMatch(/the agent tries it anyway$/);
  });

  it.each([
    ['aws_iid', HOSTS.ec2Nitro, {}],
    ['aws_iid', HOSTS.ec2Xen, {}],
    ['aws_iid', HOSTS.dockerOnEc2, {}],
    ['gcp_iit', HOSTS.gce, {}],
    ['azure_msi', HOSTS.azure, {}],
    ['tpm_devid', HOSTS.bareMetal, { '/dev/tpmrm0': 'usable' }],
    ['tpm_devid', HOSTS.qemu, { '/dev/tpm0': 'usable' }],
    ['k8s_psat', HOSTS.docker, { [PSAT]: 'usable' }],
    // No DMI at all says nothing about the cloud: no warning either way.
    ['aws_iid', HOSTS.docker, {}],
    ['gcp_iit', HOSTS.docker, {}],
    ['azure_msi', HOSTS.docker, {}],
    ['join_token', HOSTS.gce, {}],
    ['x509pop', HOSTS.docker, {}],
    ['sshpop', HOSTS.bareMetal, {}],
    ['http_challenge', HOSTS.docker, {}],
  ] as const)('no warning for %s on %#', async (name, host, paths) => {
    expect(await warned(host, name, paths)).toEqual([]);
  });

  it('tpm_devid: a TPM without read/write access for this process', async () => {
    const [w] = await warned(HOSTS.bareMetal, 'tpm_devid', { '/dev/tpmrm0': 'denied' });
    expect(w).toContain("this process cannot read and write /dev/tpmrm0 (on most distributions the agent's user must be in the tss group)");
  });

  it('tpm_devid: a configured tpm_device_path is what counts', async () => {
    const at = (path: string) => ({ name: 'tpm_devid', data: { tpm_device_path: path } });
    expect(await warned(HOSTS.bareMetal, at('/run/swtpm.sock'), { '/run/swtpm.sock': 'usable' })).toEqual([]);
    const r = await report(HOSTS.bareMetal, at('/run/swtpm.sock'), { '/run/swtpm.sock': 'usable' });
    expect(r.fields.tpm).toBe('/run/swtpm.sock');
    expect(await warned(HOSTS.bareMetal, at('/dev/tpmrm1'), TPM)).toEqual([expect.stringContaining('tpm_device_path /dev/tpmrm1 does not exist')]);
  });

  it('k8s_psat: reads its own token_path, and says when only the default token is there', async () => {
    const custom = { name: 'k8s_psat', data: { cluster: 'c', token_path: '/run/psat/token' } };
    expect(await warned(HOSTS.docker, custom, { '/run/psat/token': 'usable' })).toEqual([]);
    expect((await report(HOSTS.docker, custom, { '/run/psat/token': 'usable' })).fields.k8s_token).toBe('/run/psat/token');
    const [w] = await warned(HOSTS.docker, 'k8s_psat', { [SA]: 'usable' });
    expect(w).toContain(`no service account token at ${PSAT}`);
    expect(w).toContain(`the pod's default token at ${SA} is there, but k8s_psat does not read it`);
    expect(await warned(HOSTS.docker, 'k8s_psat', { [PSAT]: 'denied' })).toEqual([expect.stringContaining(`this process cannot read the service account token at ${PSAT}`)]);
  });

  it('has a rule only for names that are (or are about to be) built-in node attestors', () => {
    const pending = ['azure_msi', 'k8s_psat'];
    for (const name of Object.keys(FIT_RULES)) expect(NODE_ATTESTORS.names.includes(name) || pending.includes(name), name).toBe(true);
  });
});
