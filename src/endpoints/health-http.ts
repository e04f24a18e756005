/**
 * spire-agent's optional HTTP health listener (health_checks block): `live` answers
 * 200 while the process runs, `ready` answers 200 once the Workload API serves.
 * For Kubernetes probes; it binds where the config says (localhost by default).
 */
import { createBoundedHttpServer, type BoundedHttpServer, type HttpAnswer } from '../net/bounded-http-server.js';
import type { HealthChecksConfig } from '../config/types.js';

export class HealthHttpListener {
  private server: BoundedHttpServer | undefined;

  constructor(
    private readonly config: HealthChecksConfig,
    private readonly isReady: () => boolean,
    /** Told when the listener cannot accept connections (out of file descriptors). */
    private readonly onError: (err: Error) => void = () => {},
  ) {}

  async listen(): Promise<void> {
    if (!this.config.listenerEnabled) return;
    const { livePath, readyPath } = this.config;
    const server = createBoundedHttpServer((req): HttpAnswer => {
      const path = req.target.split('?')[0];
      const ok = path === livePath ? true : path === readyPath ? this.isReady() : undefined;
      if (ok === undefined) return { status: 404 };
      return { status: ok ? 200 : 500, headers: { 'content-type': 'application/json' }, body: JSON.stringify(path === livePath ? { live: ok } : { ready: ok }) };
    }, this.onError);
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.config.bindPort, this.config.bindAddress, () => {
        // Left attached, this one-shot listener was all that stood between a second accept error and a crash.
        server.off('error', reject);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}
