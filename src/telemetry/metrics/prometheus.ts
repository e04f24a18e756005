/**
 * Metrics kept for a Prometheus scrape, with prom-client (one Registry per agent, nothing global).
 *
 * Counters and gauges are plain numbers in cells found by label values through nested Maps, copied into
 * prom-client only when /metrics is scraped (its `collect` hook): incrementing one on the request path
 * allocates nothing. Summaries go to prom-client's observe with a label object made once per combination.
 */
import { hostname } from 'node:os';
import { Counter, Gauge, Registry, Summary, collectDefaultMetrics } from 'prom-client';
import { allowedByPrefix, filterKey, promName } from './names.js';
import { NO_METRICS } from './noop.js';
import { OWN_PREFIX, type CallHandle, type CounterHandle, type GaugeHandle, type Metrics, type MetricsOptions, type SampleHandle } from './types.js';

type Labels = Record<string, string>;
interface Cell {
  readonly labels: Labels;
  value: number;
}

/** Cells by up to three label values; a label value not given is "". */
class Cells {
  private readonly root = new Map<string, Map<string, Map<string, Cell>>>();

  constructor(private readonly names: readonly string[]) {}

  get(v1 = '', v2 = '', v3 = ''): Cell {
    let a = this.root.get(v1);
    if (!a) this.root.set(v1, (a = new Map()));
    let b = a.get(v2);
    if (!b) a.set(v2, (b = new Map()));
    let c = b.get(v3);
    if (!c) {
      const values = [v1, v2, v3];
      c = { labels: Object.fromEntries(this.names.map((n, i) => [n, values[i]!])), value: 0 };
      b.set(v3, c);
    }
    return c;
  }

  *all(): Iterable<Cell> {
    for (const a of this.root.values()) for (const b of a.values()) yield* b.values();
  }
}

/** go-metrics' Prometheus summaries: these quantiles over a 10 s window. */
const SUMMARY = { maxAgeSeconds: 10, ageBuckets: 5 } as const;
const PERCENTILES = [0.5, 0.9, 0.99];

export class PrometheusMetrics implements Metrics {
  readonly enabled = true;
  readonly registry = new Registry();
  readonly own: Metrics['own'];
  private readonly families = new Map<string, unknown>();
  private readonly scrapeHooks: (() => void)[] = [];

  constructor(private readonly opts: MetricsOptions) {
    if (opts.enableHostnameLabel) this.registry.setDefaultLabels({ host: hostname() });
    // Node's process_* and nodejs_* metrics, in place of spire-agent's Go runtime ones.
    collectDefaultMetrics({ register: this.registry });
    this.own = {
      counter: (name, help, labels = []) => this.makeCounter(OWN_PREFIX, [name], labels, help),
      gauge: (name, help, labels = []) => this.makeGauge(OWN_PREFIX, [name], labels, help),
    };
  }

  counter(key: readonly string[], labels: readonly string[] = []): CounterHandle {
    return this.makeCounter(this.opts.metricPrefix, key, labels);
  }

  gauge(key: readonly string[], labels: readonly string[] = []): GaugeHandle {
    return this.makeGauge(this.opts.metricPrefix, key, labels);
  }

  sample(key: readonly string[], labels: readonly string[] = []): SampleHandle {
    return this.makeSample(this.opts.metricPrefix, key, labels);
  }

  call(key: readonly string[], labels: readonly string[] = []): CallHandle {
    const count = this.makeCounter(this.opts.metricPrefix, key, [...labels, 'status']);
    const elapsed = this.makeSample(this.opts.metricPrefix, [...key, 'elapsed_time'], [...labels, 'status']);
    if (labels.length === 0) {
      return {
        done: (status, ms) => {
          count.inc(status);
          elapsed.observe(ms, status);
        },
      };
    }
    return {
      done: (status, ms, v1) => {
        count.inc(v1, status);
        elapsed.observe(ms, v1, status);
      },
    };
  }

  onScrape(fn: () => void): void {
    this.scrapeHooks.push(fn);
  }

  /** The exposition text and its content type, for /metrics. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    for (const fn of this.scrapeHooks) fn();
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private allowed(prefix: string, key: readonly string[]): boolean {
    return allowedByPrefix(filterKey(prefix, key), this.opts.allowedPrefixes, this.opts.blockedPrefixes);
  }

  /** One family per name: asking twice (two components, one metric) shares it. */
  private family<T>(name: string, make: () => T): T {
    let f = this.families.get(name) as T | undefined;
    if (!f) this.families.set(name, (f = make()));
    return f;
  }

  private makeCounter(prefix: string, key: readonly string[], labels: readonly string[], help?: string): CounterHandle {
    if (!this.allowed(prefix, key)) return NO_METRICS.counter(key);
    const name = promName(prefix, key);
    return this.family(name, () => {
      const cells = new Cells(labels);
      new Counter({
        name,
        help: help ?? `spire-agent metric ${filterKey(prefix, key)}`,
        labelNames: labels,
        registers: [this.registry],
        collect() {
          this.reset();
          for (const c of cells.all()) this.inc(c.labels, c.value);
        },
      });
      // Label-less counters show 0 before their first increment, as go-metrics' do once declared.
      if (labels.length === 0) cells.get();
      return {
        inc: (v1?: string, v2?: string, by = 1) => {
          cells.get(v1, v2).value += by;
        },
      } satisfies CounterHandle;
    });
  }

  private makeGauge(prefix: string, key: readonly string[], labels: readonly string[], help?: string): GaugeHandle {
    if (!this.allowed(prefix, key)) return NO_METRICS.gauge(key);
    const name = promName(prefix, key);
    return this.family(name, () => {
      const cells = new Cells(labels);
      new Gauge({
        name,
        help: help ?? `spire-agent metric ${filterKey(prefix, key)}`,
        labelNames: labels,
        registers: [this.registry],
        collect() {
          for (const c of cells.all()) this.set(c.labels, c.value);
        },
      });
      if (labels.length === 0) cells.get();
      return {
        set: (value: number, v1?: string, v2?: string) => {
          cells.get(v1, v2).value = value;
        },
        add: (delta: number, v1?: string, v2?: string) => {
          cells.get(v1, v2).value += delta;
        },
      } satisfies GaugeHandle;
    });
  }

  private makeSample(prefix: string, key: readonly string[], labels: readonly string[]): SampleHandle {
    if (!this.allowed(prefix, key)) return NO_METRICS.sample(key);
    const name = promName(prefix, key);
    return this.family(name, () => {
      const summary = new Summary({ name, help: `spire-agent metric ${filterKey(prefix, key)}`, labelNames: labels, registers: [this.registry], percentiles: [...PERCENTILES], ...SUMMARY });
      const cells = new Cells(labels);
      return {
        observe: (value: number, v1?: string, v2?: string) => {
          summary.observe(cells.get(v1, v2).labels, value);
        },
      } satisfies SampleHandle;
    });
  }
}
