/**
 * The Prometheus sink's HTTP listener: the exposition on every path of host:port, as spire-agent's
 * promhttp handler answers, from before node attestation on (spire issue 7164: a failing attestation
 * must not hide the metrics that would show it).
 */
import { createBoundedHttpServer, type BoundedHttpServer, type HttpAnswer } from '../../net/bounded-http-server.js';
import type { Logger } from '../logger.js';
import { F } from '../names.js';
import { MetricsError } from './errors.js';
import type { PrometheusMetrics } from './prometheus.js';

export class MetricsServer {
  private server: BoundedHttpServer | undefined;
  /** The scrape in progress, shared by every request that arrives meanwhile. */
  private scraping: ReturnType<PrometheusMetrics['scrape']> | undefined;

  constructor(
    private readonly metrics: PrometheusMetrics,
    private readonly where: { readonly host: string; readonly port: number },
    private readonly log: Logger,
  ) {}

  /** Resolves once listening; rejects (EADDRINUSE, EACCES) so the agent does not start without its metrics. */
  async listen(): Promise<{ port: number }> {
    const { host, port } = this.where;
    if (host !== 'localhost') this.log.warn({ host, port }, 'Agent is now configured to accept remote network connections for Prometheus stats collection. Please ensure access to this port is tightly controlled');
    this.log.info({ host, port }, 'Starting prometheus exporter');
    const server = createBoundedHttpServer(
      async (req): Promise<HttpAnswer> => {
        if (req.method !== 'GET' && req.method !== 'HEAD') return { status: 405, headers: { allow: 'GET, HEAD' } };
        try {
          const { contentType, body } = await this.sharedScrape();
          return { status: 200, headers: { 'content-type': contentType }, body };
        } catch (err) {
          this.log.warn({ [F.error]: err instanceof Error ? err.message : String(err) }, 'Prometheus scrape failed');
          return { status: 500 };
        }
      },
      (err) => this.log.warn({ [F.error]: err.message }, 'Prometheus listener cannot accept connections'),
    );
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      const failed = (err: NodeJS.ErrnoException): void =>
        reject(
          new MetricsError(
            'metrics_listen_failed',
            `metrics: cannot listen on ${host}:${port} for Prometheus (${err.code ?? err.message}); free the port or set another telemetry.Prometheus.port`,
            { cause: err },
          ),
        );
      server.once('error', failed);
      server.listen(port, host, () => {
        server.off('error', failed);
        resolve();
      });
    });
    server.unref();
    const addr = server.address();
    return { port: typeof addr === 'object' && addr ? addr.port : port };
  }

  /**
   * One scrape serves every request that arrives while it runs: each costs milliseconds of the
   * agent's only thread, so a local user's concurrent requests would otherwise queue the Workload
   * API and real scrapes behind as many scrapes.
   */
  private sharedScrape(): ReturnType<PrometheusMetrics['scrape']> {
    this.scraping ??= this.metrics.scrape().finally(() => (this.scraping = undefined));
    return this.scraping;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}
