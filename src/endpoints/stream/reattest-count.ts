/**
 * `spiffe_agent_reattestations{api,outcome}`: open streams re-attested (on the timer or before an
 * update). A failed one withdraws the stream's identities (audited as "withdrawn").
 */
import type { Metrics } from '../../telemetry/metrics/index.js';

export function countedReattest<A extends unknown[], R>(metrics: Metrics | undefined, api: string, reattest: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  if (!metrics?.enabled) return reattest;
  const c = metrics.own.counter('reattestations', 'Open streams re-attested, by API and outcome (ok, failed: the stream\'s identities were withdrawn)', ['api', 'outcome']);
  return (...args) =>
    reattest(...args).then(
      (r) => {
        c.inc(api, 'ok');
        return r;
      },
      (err: unknown) => {
        c.inc(api, 'failed');
        throw err;
      },
    );
}
