/** The metrics seam and its two implementations; the agent wires one per process (src/agent/agent.ts). */
export type { CallHandle, CounterHandle, GaugeHandle, Metrics, MetricsOptions, SampleHandle } from './types.js';
export { NO_METRICS } from './noop.js';
export { PrometheusMetrics } from './prometheus.js';
export { MetricsServer } from './server.js';
export { rpcKey } from './names.js';
export { createMetrics } from './create.js';
export { codeName, statusName } from './status.js';
export { MetricsError } from './errors.js';
