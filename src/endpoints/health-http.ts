/**
 * spire-agent's optional HTTP health listener (health_checks block): `live` answers
 * 200 while the process runs, `ready` answers 200 once the Workload API serves.
 * For Kubernetes probes; it binds where the config says (localhost by default).
 */
import { createServer, type Server } from 'node:http';
import type { HealthChecksConfig } from '../config/types.js';

export class HealthHttpListener {
  private server: Server | undefined;

  constructor(
    private readonly config: HealthChecksConfig,
    private readonly isReady: () => boolean,
  ) {}

  async listen(): Promise<void> {
    if (!this.config.listenerEnabled) return;
    const { livePath, readyPath } = this.config;
    this.server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      const ok = path === livePath ? true : path === readyPath ? this.isReady() : undefined;
      if (ok === undefined) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(ok ? 200 : 500, { 'content-type': 'application/json' });
      res.end(JSON.stringify(path === livePath ? { live: ok } : { ready: ok }));
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.config.bindPort, this.config.bindAddress, () => resolve());
    });
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}
