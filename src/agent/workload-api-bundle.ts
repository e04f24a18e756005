/**
 * trust_bundle_spiffe_workload_api (spire-agent v1.14's pkg/agent/trustbundlesources): the
 * bootstrap bundle comes from another SPIFFE Workload API, typically a parent agent's socket on
 * the same host. Lives in the agent layer because it is a Workload API client (the SDK), which
 * the authority layer may not import; the session gets it as a plain function.
 */
import { TrustDomain } from '../svid/spiffe-id.js';
import { validateAddress, WorkloadAPIClient } from '../sdk/index.js';

/** spire-agent's bound on one fetch; the session's bootstrap backoff retries after it. */
export const WORKLOAD_API_BUNDLE_TIMEOUT_MS = 60_000;

export type WorkloadApiBundleFetch = (address: string, trustDomain: string, signal?: AbortSignal) => Promise<Uint8Array[]>;

/** undefined when `address` is a Workload API address; else the problem, worded as spire-agent's. */
export function workloadApiAddressProblem(address: string): string | undefined {
  const err = validateAddress(address);
  return err ? `trust_bundle_spiffe_workload_api is not a valid SPIFFE Workload API endpoint address: ${err.message}` : undefined;
}

/** The X.509 authorities the Workload API at `address` serves for `trustDomain` (one FetchX509Bundles). */
export const fetchBundleFromWorkloadApi: WorkloadApiBundleFetch = async (address, trustDomain, signal) => {
  const client = new WorkloadAPIClient({ address });
  try {
    const set = await client.fetchX509Bundles({ signal, timeoutMs: WORKLOAD_API_BUNDLE_TIMEOUT_MS }).catch((err: unknown) => {
      throw new Error(`unable to fetch trust bundle from SPIFFE Workload API ${address}: ${(err as Error).message}`, { cause: err });
    });
    const bundle = set.bundleFor(TrustDomain.parse(trustDomain));
    if (!bundle || bundle.authorities().length === 0) {
      const served = set.bundles().map((b) => b.trustDomain.name);
      throw new Error(`SPIFFE Workload API ${address} did not provide a trust bundle for trust domain "${trustDomain}"${served.length ? ` (it serves ${served.join(', ')})` : ''}`);
    }
    return [...bundle.authorities()];
  } finally {
    client.close();
  }
};
