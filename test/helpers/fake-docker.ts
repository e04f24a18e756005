/**
 * A FAKE Docker Engine, for what a real one cannot be made to do on demand: injected 5xx answers
 * and dropped connections (retries), `null` Labels/Env and an empty Config.Image, an engine on a
 * Podman socket path, an engine that names an API version other than its own, containers whose
 * cgroup paths come from the systemd driver or cgroup v2 (the real engine here runs cgroupfs on
 * cgroup v1). The normal path runs against a real dockerd in test/interop/docker/.
 * It serves the Engine API's documented JSON shapes (https://docs.docker.com/reference/api/engine/):
 * `GET /_ping` (body "OK", `API-Version` header), `GET [/v<api>]/containers/{id}/json`
 * (ContainerInspect: Id, Name, Image, State, Config.{Labels,Env,Image,...}) and
 * `GET [/v<api>]/images/{name}/json` (ImageInspect: Id, RepoTags, RepoDigests), with the
 * Engine's `{"message": "No such container: …"}` 404s, over a real Unix socket with node:http.
 * It records every request and can be told to fail the next N container inspects or pings.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface FakeContainer {
  readonly id: string;
  readonly name?: string;
  /** Config.Image: the reference the container was created from, e.g. "envoyproxy/envoy:contrib-v1.29.1". */
  readonly image: string;
  readonly labels?: Record<string, string> | null;
  readonly env?: string[] | null;
}

export interface FakeImage {
  /** The reference a client inspects it by (Config.Image of a container). */
  readonly ref: string;
  /** Image config digest, "sha256:<64 hex>". */
  readonly id: string;
  readonly repoDigests?: string[];
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly host: string | undefined;
}

export class FakeDockerEngine {
  readonly socketPath: string;
  readonly requests: RecordedRequest[] = [];
  private readonly dir: string;
  private readonly server: Server;
  private readonly containers = new Map<string, FakeContainer>();
  private readonly images = new Map<string, FakeImage>();
  private failures = 0;
  private failureStatus = 500;
  private imageFailures = 0;
  private pingFailures = 0;
  /** The `API-Version` header of every answer; undefined = no header (an engine older than API 1.25). */
  apiVersion: string | undefined = '1.43';

  private constructor(dir: string, socketName: string) {
    this.dir = dir;
    this.socketPath = join(dir, socketName);
    this.server = createServer((req, res) => this.handle(req, res));
  }

  /** Listens on `<fresh temp dir>/<socketName>`. */
  static async start(socketName = 'docker.sock'): Promise<FakeDockerEngine> {
    const engine = new FakeDockerEngine(mkdtempSync(join(tmpdir(), 'fd-')), socketName);
    await new Promise<void>((resolve, reject) => {
      engine.server.once('error', reject);
      engine.server.listen(engine.socketPath, resolve);
    });
    return engine;
  }

  /** `unix://<socket>`, as docker_socket_path takes it. */
  get address(): string {
    return `unix://${this.socketPath}`;
  }

  addContainer(c: FakeContainer): this {
    this.containers.set(c.id, c);
    return this;
  }

  addImage(i: FakeImage): this {
    this.images.set(i.ref, i);
    return this;
  }

  /** The next `n` container inspects answer `status` with an Engine error body. */
  failContainerInspect(n: number, status = 500): this {
    this.failures = n;
    this.failureStatus = status;
    return this;
  }

  /** The next `n` pings lose their connection before any answer. */
  failPing(n: number): this {
    this.pingFailures = n;
    return this;
  }

  failImageInspect(n: number): this {
    this.imageFailures = n;
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
    rmSync(this.dir, { recursive: true, force: true });
  }

  private versionHeader(): Record<string, string> {
    return this.apiVersion === undefined ? {} : { 'Api-Version': this.apiVersion };
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = req.url ?? '';
    this.requests.push({ method: req.method ?? '', path, host: req.headers.host });
    const send = (status: number, body: unknown): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'Content-Type': 'application/json', ...this.versionHeader(), 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (req.method !== 'GET') return send(405, { message: 'method not allowed' });
    if (path === '/_ping') {
      if (this.pingFailures > 0) {
        this.pingFailures--;
        req.socket.destroy();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', ...this.versionHeader(), 'Content-Length': 2 });
      res.end('OK');
      return;
    }
    const m = /^(?:\/v\d+\.\d+)?\/(containers|images)\/(.+)\/json$/.exec(path.split('?')[0] ?? '');
    if (!m) return send(404, { message: 'page not found' });
    const name = decodeURIComponent(m[2] ?? '');
    if (m[1] === 'containers') {
      if (this.failures > 0) {
        this.failures--;
        return send(this.failureStatus, { message: 'fake engine: injected failure' });
      }
      const c = this.containers.get(name);
      if (!c) return send(404, { message: `No such container: ${name}` });
      return send(200, containerInspect(c));
    }
    if (this.imageFailures > 0) {
      this.imageFailures--;
      return send(500, { message: 'fake engine: injected image failure' });
    }
    const img = this.images.get(name);
    if (!img) return send(404, { message: `No such image: ${name}` });
    return send(200, {
      Id: img.id,
      RepoTags: [img.ref],
      RepoDigests: img.repoDigests ?? [],
      Created: '2024-02-12T18:02:11.311Z',
      Os: 'linux',
      Architecture: 'amd64',
      Config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Labels: null },
    });
  }
}

/** The ContainerInspect shape, trimmed to the documented fields a client would see. */
function containerInspect(c: FakeContainer): unknown {
  return {
    Id: c.id,
    Created: '2024-03-01T10:00:00.000000000Z',
    Path: '/docker-entrypoint.sh',
    Args: [],
    State: { Status: 'running', Running: true, Pid: 4242, StartedAt: '2024-03-01T10:00:01.000000000Z' },
    Image: 'sha256:' + '0'.repeat(64),
    Name: `/${c.name ?? 'workload'}`,
    RestartCount: 0,
    Driver: 'overlay2',
    HostConfig: { NetworkMode: 'bridge' },
    Config: {
      Hostname: c.id.slice(0, 12),
      User: '',
      Env: c.env === undefined ? [] : c.env,
      Cmd: ['envoy'],
      Image: c.image,
      Labels: c.labels === undefined ? {} : c.labels,
    },
    NetworkSettings: { Networks: {} },
  };
}
