/** The Prometheus listener could not bind: the agent does not start without the metrics it was told to serve. */
import { SpiffeAgentError } from '../../errors.js';

declare module '../../errors.js' {
  interface ErrorCodes {
    metrics: 'metrics_listen_failed';
  }
}

export class MetricsError extends SpiffeAgentError<'metrics_listen_failed'> {}
