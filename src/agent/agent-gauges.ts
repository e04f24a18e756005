/**
 * Gauges read at scrape time from state the agent keeps anyway: spire-agent's `started`, `uptime_in_ms`
 * and LRU cache sizes, and ours — open streams, server reachability and whether the agent can mint
 * SVIDs now (spire issue 5435: "is this agent able to serve new workloads?").
 */
import type { AuthorityStatus } from '../authority/types.js';
import type { Clock } from '../clock.js';
import type { Metrics } from '../telemetry/metrics/index.js';
import { agentVersion } from './version.js';

export interface AgentGaugeState {
  readonly authority: AuthorityStatus | undefined;
  readonly cache: { readonly entryCount: number; readonly cachedX509Count: number } | undefined;
  readonly openStreams: number;
}

/** spire's SanitizeLabels: label values keep letters and digits only ("example.org" → "example_org"). */
const sanitize = (v: string): string => v.replace(/[^a-zA-Z0-9]/g, '_');

export function registerAgentGauges(metrics: Metrics, d: { startedAt: number; clock: Clock; trustDomain: string; serverMode: boolean; state: () => AgentGaugeState }): void {
  if (!metrics.enabled) return;
  metrics.gauge(['started'], ['trust_domain_id', 'version']).set(1, sanitize(d.trustDomain), sanitize(agentVersion()));
  const uptime = metrics.gauge(['uptime_in_ms']);
  const records = metrics.gauge(['lru_cache_record_map_size']);
  const svids = metrics.gauge(['lru_cache_svid_map_size']);
  const streams = metrics.own.gauge('open_streams', 'Streaming calls open on the Workload API and SDS sockets');
  const reachable = metrics.own.gauge('server_reachable', '1 when the last call to the SPIRE server succeeded, 0 when it failed; absent before the first (1 with the embedded authority)');
  const canMint = metrics.own.gauge('can_mint', '1 when the agent can sign SVIDs for a new workload now: a live agent SVID and a reachable server, or the embedded authority');
  // spire-agent's (spelling included): 1 once node attestation gave the agent its SVID.
  const bootstrapped = d.serverMode ? metrics.gauge(['bootstraped']) : undefined;
  const ready = metrics.own.gauge('ready', '1 once the agent serves the Workload API from a first snapshot');
  metrics.onScrape(() => {
    const now = d.clock.now();
    const s = d.state();
    uptime.set(now - d.startedAt);
    records.set(s.cache?.entryCount ?? 0);
    svids.set(s.cache?.cachedX509Count ?? 0);
    streams.set(s.openStreams);
    const a = s.authority;
    const embedded = a?.mode === 'embedded';
    reachable.set(embedded || a?.serverReachable === true ? 1 : 0);
    const svidLive = a?.agentSVID !== undefined && a.agentSVID.notAfter > now;
    canMint.set(a?.ready && (embedded || (a.serverReachable === true && svidLive)) ? 1 : 0);
    ready.set(a?.ready ? 1 : 0);
    bootstrapped?.set(a?.agentSVID !== undefined ? 1 : 0);
  });
}
