/**
 * Metric names as spire-agent v1.13.3 produces them: go-metrics joins the service name and the key
 * parts with "_" for Prometheus (replacing anything but [a-zA-Z0-9_:]), and filters on the same parts
 * joined with "." (AllowedPrefixes/BlockedPrefixes). RPC keys come from gRPC method names in snake_case
 * (spire's pkg/common/api/middleware/names.go rules, rewritten here).
 */

export function promName(prefix: string, key: readonly string[]): string {
  return [prefix, ...key].join('_').replace(/[^a-zA-Z0-9_:]/g, '_');
}

export function filterKey(prefix: string, key: readonly string[]): string {
  return [prefix, ...key].join('.');
}

/**
 * go-metrics' prefix filter: the longest configured prefix of `dotted` decides (allowed or blocked);
 * no prefix matches: allowed (spire-agent leaves FilterDefault at true, so AllowedPrefixes alone blocks nothing).
 */
export function allowedByPrefix(dotted: string, allowed: readonly string[], blocked: readonly string[]): boolean {
  let best = -1;
  let verdict = true;
  for (const p of allowed) if (dotted.startsWith(p) && p.length > best) [best, verdict] = [p.length, true];
  // A prefix in both lists: go-metrics inserts allowed first, then blocked, so blocked wins.
  for (const p of blocked) if (dotted.startsWith(p) && p.length >= best) [best, verdict] = [p.length, false];
  return verdict;
}

/** PascalCase to snake_case: "FetchX509SVID" → "fetch_x509svid", "FetchX509Bundles" → "fetch_x509_bundles". */
export function snakeKey(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (!/[\p{L}\p{N}]/u.test(c)) {
      out += '_';
      continue;
    }
    const lower = c.toLowerCase();
    const isLower = (x: string | undefined): boolean => x !== undefined && x !== x.toUpperCase() && x === x.toLowerCase();
    if (c !== lower && i > 0 && i + 1 < s.length && (isLower(s[i + 1]) || isLower(s[i - 1])) && !out.endsWith('_')) out += '_';
    out += lower;
  }
  return out;
}

/** Short service names spire-agent uses in RPC metric keys. */
const SERVICES: Readonly<Record<string, string>> = {
  SpiffeWorkloadAPI: 'WorkloadAPI',
  'envoy.service.secret.v3.SecretDiscoveryService': 'SDS.v3',
  'grpc.health.v1.Health': 'Health',
  'logger.v1.Logger': 'Logger',
  'spire.api.agent.delegatedidentity.v1.DelegatedIdentity': 'DelegatedIdentity',
};

/** "/SpiffeWorkloadAPI/FetchX509SVID" → ['rpc', 'workload_api', 'fetch_x509svid']. */
export function rpcKey(path: string): string[] {
  const [service = '', method = ''] = path.replace(/^\//, '').split('/');
  const short = (SERVICES[service] ?? service.replace(/^spire\.api\.server\./, '')).split('.');
  const m = method === 'SubscribeToX509SVIDs' ? 'subscribe_to_x509_svids' : method;
  return ['rpc', ...short.map(snakeKey), snakeKey(m)];
}
