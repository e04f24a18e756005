/**
 * Which node attestors cannot work on this node, one small rule per attestor name. A rule sees the
 * node's profile and the attestor's plugin_data (as written; validate checks its syntax) and says
 * why the attestor cannot work here, or nothing. It only ever warns: the operator may know better
 * (a metadata proxy, a device passed in later). Attestors with no host requirement (join_token,
 * x509pop, sshpop, http_challenge: their files are checked by validate) have no rule.
 *
 * A new attestor needs at most two entries: `paths` if it depends on a file or device, and `check`.
 */
import type { ProbePaths } from './facts.js';
import { AZURE_ASSET_TAG, type CheckedPath, type NodeProfile } from './profile.js';

type PluginData = Readonly<Record<string, unknown>>;

export interface FitRule {
  /** Paths beyond the defaults this attestor's config makes relevant. */
  readonly paths?: (data: PluginData) => Partial<ProbePaths>;
  /** Why the attestor cannot work on this node, or undefined when nothing says so. */
  readonly check: (node: NodeProfile, data: PluginData) => string | undefined;
}

export const DEFAULT_TPM_PATHS = ['/dev/tpmrm0', '/dev/tpm0'] as const;
/** spire-agent's k8s_psat default token_path (pkg/agent/plugin/nodeattestor/k8spsat). */
export const DEFAULT_PSAT_TOKEN_PATH = '/var/run/secrets/tokens/spire-agent';
/** The token every pod gets unless automountServiceAccountToken is false. */
export const SERVICE_ACCOUNT_TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/token';

const stringKey = (data: PluginData, key: string): string | undefined => {
  const v = data[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
};

const stateOf = (ps: readonly CheckedPath[], path: string): CheckedPath['state'] => ps.find((p) => p.path === path)?.state;

/** The node as the host reports it, for the cloud rules' messages. */
function reported(node: NodeProfile): string {
  const what = [node.manufacturer, node.model].filter((s) => s !== '').map((s) => JSON.stringify(s));
  return what.length > 0 ? `it reports ${what.join(' ')}` : 'it reports no vendor';
}

/** The cloud rules warn only when the host names a vendor; no DMI at all says nothing either way. */
function notOnCloud(node: NodeProfile, cloud: NodeProfile['cloud'], vendor: string, why: string): string | undefined {
  if (node.cloud === cloud || node.cloud === 'unknown') return undefined;
  return `this host does not report ${vendor} (${reported(node)}); ${why}`;
}

function tpmDevid(node: NodeProfile, data: PluginData): string | undefined {
  const configured = stringKey(data, 'tpm_device_path');
  if (configured !== undefined) {
    const state = stateOf(node.tpm, configured);
    if (state === 'absent') return `tpm_device_path ${configured} does not exist`;
    if (state === 'denied') return `this process cannot read and write ${configured} (on most distributions the agent's user must be in the tss group)`;
    return undefined;
  }
  const defaults = node.tpm.filter((p) => (DEFAULT_TPM_PATHS as readonly string[]).includes(p.path));
  if (defaults.some((p) => p.state === 'usable' || p.state === undefined)) return undefined;
  const denied = defaults.find((p) => p.state === 'denied');
  if (denied) return `this process cannot read and write ${denied.path} (on most distributions the agent's user must be in the tss group)`;
  return `no TPM device is visible to this process (${DEFAULT_TPM_PATHS.join(', ')} absent): the host has no TPM 2.0, or a container without the device or systemd's PrivateDevices=yes hides it`;
}

function k8sPsat(node: NodeProfile, data: PluginData): string | undefined {
  const path = stringKey(data, 'token_path') ?? DEFAULT_PSAT_TOKEN_PATH;
  const state = stateOf(node.k8sTokens, path);
  if (state === 'denied') return `this process cannot read the service account token at ${path}`;
  if (state !== 'absent') return undefined;
  const plain = stateOf(node.k8sTokens, SERVICE_ACCOUNT_TOKEN_PATH) === 'usable' && path !== SERVICE_ACCOUNT_TOKEN_PATH;
  return (
    `no service account token at ${path} (token_path): mount a projected serviceAccountToken volume there with the audience the server expects` +
    (plain ? `; the pod's default token at ${SERVICE_ACCOUNT_TOKEN_PATH} is there, but k8s_psat does not read it` : '')
  );
}

function azureMsi(node: NodeProfile): string | undefined {
  if (node.cloud === 'azure' || node.cloud === 'unknown') return undefined;
  if (node.hyperV) {
    return `this host is a Hyper-V VM but lacks Azure's chassis asset tag ${AZURE_ASSET_TAG}, so it is not an Azure VM; azure_msi asks the Azure Instance Metadata Service for a managed identity token`;
  }
  return notOnCloud(node, 'azure', 'Microsoft Azure', 'azure_msi asks the Azure Instance Metadata Service for a managed identity token');
}

/** Keyed by the name in plugins { NodeAttestor "<name>" }; azure_msi and k8s_psat may come before their plugins do. */
export const FIT_RULES: Readonly<Record<string, FitRule>> = {
  tpm_devid: {
    paths: (data) => ({ tpm: [stringKey(data, 'tpm_device_path')].filter((p): p is string => p !== undefined) }),
    check: tpmDevid,
  },
  aws_iid: {
    check: (node) => notOnCloud(node, 'aws', 'Amazon EC2', 'aws_iid needs the EC2 instance metadata service to sign an instance identity document'),
  },
  gcp_iit: {
    check: (node) => notOnCloud(node, 'gcp', 'Google Compute Engine', 'gcp_iit needs the GCE metadata server to issue an instance identity token'),
  },
  azure_msi: { check: azureMsi },
  k8s_psat: {
    paths: (data) => ({ k8sTokens: [stringKey(data, 'token_path') ?? DEFAULT_PSAT_TOKEN_PATH] }),
    check: k8sPsat,
  },
};

/** The defaults every report checks, plus what the configured attestor's rule adds; the projected token first. */
export function probePaths(attestor: { name: string; data: PluginData } | undefined): ProbePaths {
  const extra = attestor ? FIT_RULES[attestor.name]?.paths?.(attestor.data) : undefined;
  const uniq = (ps: readonly string[]): string[] => [...new Set(ps)];
  return {
    tpm: uniq([...(extra?.tpm ?? []), ...DEFAULT_TPM_PATHS]),
    k8sTokens: uniq([...(extra?.k8sTokens ?? [DEFAULT_PSAT_TOKEN_PATH]), SERVICE_ACCOUNT_TOKEN_PATH]),
  };
}
