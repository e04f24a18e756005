/**
 * The metrics seam. Components take a `Metrics` and ask it for handles once, at construction, with
 * the metric's key (spire-agent's go-metrics key parts, e.g. ['rpc', 'workload_api', 'fetch_x509svid'])
 * and label names; on the request path they only call `inc`/`set`/`observe` with label values, so
 * no name or label string is built per call. Without a sink the handles do nothing (noop.ts).
 */

/** A counter; label values in the order of the names it was made with. */
export interface CounterHandle {
  inc(v1?: string, v2?: string, by?: number): void;
}

export interface GaugeHandle {
  set(value: number, v1?: string, v2?: string): void;
  add(delta: number, v1?: string, v2?: string): void;
}

/** go-metrics' AddSample: a summary (quantiles 0.5, 0.9, 0.99 over 10 s, plus _sum and _count). */
export interface SampleHandle {
  observe(value: number, v1?: string, v2?: string): void;
}

/**
 * spire's CallCounter: a counter `<key>` and a summary `<key>_elapsed_time` (milliseconds), both with
 * a `status` label (a gRPC code name: OK, PermissionDenied, ...) after the call's own labels.
 */
export interface CallHandle {
  done(status: string, elapsedMs: number, v1?: string): void;
}

export interface Metrics {
  /** False for the no-op implementation: callers may skip work done only for metrics. */
  readonly enabled: boolean;
  /** spire-agent's metrics: named `<MetricPrefix>_<key parts joined by _>` (spire_agent_... by default). */
  counter(key: readonly string[], labels?: readonly string[]): CounterHandle;
  gauge(key: readonly string[], labels?: readonly string[]): GaugeHandle;
  sample(key: readonly string[], labels?: readonly string[]): SampleHandle;
  call(key: readonly string[], labels?: readonly string[]): CallHandle;
  /** Runs `fn` just before each scrape: gauges of state the agent already keeps are read then, not on every change. */
  onScrape(fn: () => void): void;
  /** Ours, beyond spire-agent: named `spiffe_agent_<name>`, with a help text. */
  own: {
    counter(name: string, help: string, labels?: readonly string[]): CounterHandle;
    gauge(name: string, help: string, labels?: readonly string[]): GaugeHandle;
  };
}

/** What createMetrics needs from agent.conf's telemetry block (src/config/types.ts TelemetryConfig). */
export interface MetricsOptions {
  readonly prometheus?: { readonly host: string; readonly port: number };
  readonly metricPrefix: string;
  readonly enableHostnameLabel: boolean;
  readonly allowedPrefixes: readonly string[];
  readonly blockedPrefixes: readonly string[];
}

/** Prefix of the metrics spire-agent does not have. */
export const OWN_PREFIX = 'spiffe_agent';
