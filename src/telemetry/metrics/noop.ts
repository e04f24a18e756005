/** Metrics when agent.conf configures no sink: every handle is the same frozen do-nothing object. */
import type { CallHandle, CounterHandle, GaugeHandle, Metrics, SampleHandle } from './types.js';

const nothing = (): void => undefined;
const HANDLE: CounterHandle & GaugeHandle & SampleHandle & CallHandle = Object.freeze({ inc: nothing, set: nothing, add: nothing, observe: nothing, done: nothing });

export const NO_METRICS: Metrics = Object.freeze({
  enabled: false,
  counter: () => HANDLE,
  gauge: () => HANDLE,
  sample: () => HANDLE,
  call: () => HANDLE,
  onScrape: nothing,
  own: Object.freeze({ counter: () => HANDLE, gauge: () => HANDLE }),
});
