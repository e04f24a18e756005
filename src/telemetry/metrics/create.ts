/** Picks the implementation for agent.conf's telemetry block. */
import type { Logger } from '../logger.js';
import { NO_METRICS } from './noop.js';
import { PrometheusMetrics } from './prometheus.js';
import { MetricsServer } from './server.js';
import type { Metrics, MetricsOptions } from './types.js';

/** The metrics for agent.conf's telemetry block, and the listener that serves them (none without a sink). */
export function createMetrics(opts: MetricsOptions, log: Logger): { metrics: Metrics; server?: MetricsServer } {
  if (!opts.prometheus) return { metrics: NO_METRICS };
  const metrics = new PrometheusMetrics(opts);
  return { metrics, server: new MetricsServer(metrics, opts.prometheus, log) };
}
