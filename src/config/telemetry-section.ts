/**
 * `telemetry { ... }`, read as spire-agent v1.13.3 reads it (pkg/common/telemetry/config.go): key names
 * match case-insensitively, as its HCL decoder does. Prometheus and the go-metrics options that shape its
 * output work; the sinks we do not implement are refused with the reason, never accepted and dropped.
 */
import { TELEMETRY_DEFAULTS as TD } from './defaults.js';
import { ObjectReader, type ProblemList, type Raw, unwrapBlock } from './reader.js';
import type { TelemetryConfig } from './types.js';

const KNOWN = [
  'Prometheus',
  'DogStatsd',
  'Statsd',
  'M3',
  'InMem',
  'MetricPrefix',
  'EnableTrustDomainLabel',
  'EnableHostnameLabel',
  'AllowedPrefixes',
  'BlockedPrefixes',
  'AllowedLabels',
  'BlockedLabels',
] as const;

/** Why each unimplemented key is refused; the user can act on every one of these. */
const REFUSED: Readonly<Record<string, string>> = {
  DogStatsd: 'the DogStatsd sink is not supported by spiffe-agent; scrape the Prometheus sink instead (telemetry { Prometheus { port = ... } })',
  Statsd: 'the Statsd sink is not supported by spiffe-agent; scrape the Prometheus sink instead (telemetry { Prometheus { port = ... } })',
  M3: 'the M3 sink is not supported by spiffe-agent; scrape the Prometheus sink instead (telemetry { Prometheus { port = ... } })',
  InMem: 'the InMem sink (metrics dumped to the log on SIGUSR1) is not supported by spiffe-agent; remove it and use the Prometheus sink',
  AllowedLabels: 'label filtering is not supported by spiffe-agent; remove AllowedLabels (every metric carries only the labels the README lists)',
  BlockedLabels: 'label filtering is not supported by spiffe-agent; remove BlockedLabels (every metric carries only the labels the README lists)',
};

export function readTelemetry(v: unknown, problems: ProblemList): TelemetryConfig {
  const off: TelemetryConfig = Object.freeze({ metricPrefix: TD.metric_prefix, enableHostnameLabel: TD.enable_hostname_label, allowedPrefixes: [], blockedPrefixes: [] });
  if (v === undefined) return off;
  const obj = unwrapBlock(v, 'telemetry', problems);
  if (!obj) return off;
  const r = new ObjectReader(canonicalKeys(obj, problems, 'telemetry'), 'telemetry', problems);
  for (const [key, why] of Object.entries(REFUSED)) if (r.raw(key) !== undefined) problems.add(r.key(key), why);
  if (r.optionalBool('EnableTrustDomainLabel') === true) {
    problems.add(r.key('EnableTrustDomainLabel'), 'the trust_domain label is not supported by spiffe-agent; remove EnableTrustDomainLabel or set it to false');
  }
  const prefix = r.string('MetricPrefix', TD.metric_prefix);
  const cfg: TelemetryConfig = {
    prometheus: readPrometheus(r),
    metricPrefix: prefix === '' ? TD.metric_prefix : prefix,
    enableHostnameLabel: r.bool('EnableHostnameLabel', TD.enable_hostname_label),
    allowedPrefixes: Object.freeze(r.stringList('AllowedPrefixes', [])),
    blockedPrefixes: Object.freeze(r.stringList('BlockedPrefixes', [])),
  };
  r.finish();
  return Object.freeze(cfg);
}

function readPrometheus(r: ObjectReader): TelemetryConfig['prometheus'] {
  const p = r.raw('Prometheus');
  if (p === undefined) return undefined;
  // Repeated Prometheus blocks are refused (unwrapBlock): spire-agent silently keeps one of them.
  const obj = unwrapBlock(p, r.key('Prometheus'), r.problems);
  if (!obj) return undefined;
  const pr = new ObjectReader(canonicalKeys(obj, r.problems, r.key('Prometheus'), ['host', 'port']), r.key('Prometheus'), r.problems);
  const host = pr.string('host', TD.prometheus_host);
  if (!pr.has('port')) pr.problems.add(pr.key('port'), 'missing: set the port the /metrics endpoint listens on, e.g. port = 9988');
  const port = pr.int('port', 0, { min: 1, max: 65535 });
  pr.finish();
  return Object.freeze({ host: host === '' ? TD.prometheus_host : host, port });
}

/** Renames keys to their canonical spelling when they differ only in case (Go's HCL decoder matches them so). */
function canonicalKeys(obj: Raw, problems: ProblemList, path: string, known: readonly string[] = KNOWN): Raw {
  const byLower = new Map(known.map((k) => [k.toLowerCase(), k]));
  const out: Raw = {};
  for (const [k, val] of Object.entries(obj)) {
    const name = byLower.get(k.toLowerCase()) ?? k;
    if (name in out) problems.add(`${path}.${name}`, `set twice (as ${JSON.stringify(name)} and ${JSON.stringify(k)}); keep one`);
    out[name] = val;
  }
  return out;
}

