/**
 * The Prometheus sink's HTTP listener: the exposition on every path of host:port, as spire-agent's
 * promhttp handler answers, from before node attestation on (spire issue 7164: a failing attestation
 * must not hide the metrics that would show it).
 */
import { createServer, type Server } from 'node:http';
import type { Logger } from '../logger.js';
import { F } from '../names.js';
import { MetricsError } from './errors.js';
import type { PrometheusMetrics } from './prometheus.js';

export class MetricsServer {
  private server: Server | undefined;

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
    const server = createServer((req, res) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      this.metrics.scrape().then(
        ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(req.method === 'HEAD' ? undefined : body),
        (err: unknown) => {
          this.log.warn({ [F.error]: err instanceof Error ? err.message : String(err) }, 'Prometheus scrape failed');
          res.writeHead(500).end();
        },
      );
    });
    // A scraper that holds a connection open must not keep the agent from exiting.
    server.headersTimeout = 10_000;
    server.requestTimeout = 10_000;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new MetricsError(
            'metrics_listen_failed',
            `metrics: cannot listen on ${host}:${port} for Prometheus (${err.code ?? err.message}); free the port or set another telemetry.Prometheus.port`,
            { cause: err },
          ),
        ),
      );
      server.listen(port, host, () => {
        server.removeAllListeners('error');
        server.on('error', (err) => this.log.warn({ [F.error]: err.message }, 'Prometheus listener stopped unexpectedly'));
        resolve();
      });
    });
    server.unref();
    const addr = server.address();
    return { port: typeof addr === 'object' && addr ? addr.port : port };
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}
