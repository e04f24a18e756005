/**
 * The two Docker Engine API calls the attestor needs, over a Unix socket with plain
 * node:http. Podman serves the same Docker-compatible API on its own socket.
 * https://docs.docker.com/reference/api/engine/ — ContainerInspect, ImageInspect.
 */
import { Agent, request } from 'node:http';
import { BodyTooLargeError, readBody } from '../../../net/read-body.js';
import { DockerAttestorError } from './errors.js';

/** The fields of ContainerInspect we read; the Engine sends `null` for empty maps and lists. */
export interface ContainerConfig {
  readonly labels: Readonly<Record<string, string>>;
  readonly env: readonly string[];
  readonly image: string;
}

/** Bodies are small JSON documents; anything far larger is not an Engine answer. */
const MAX_BODY_BYTES = 8 * 1024 * 1024;
/** A daemon that accepts but never answers must not hold an attestation forever. */
const SOCKET_IDLE_TIMEOUT_MS = 30_000;
/**
 * Without docker_version, the API version is negotiated as spire-agent v1.13.3's Docker client
 * (moby v28.5) does: the engine's `API-Version` from `/_ping`, capped at that client's own 1.51,
 * and 1.24 when the engine names none. Unversioned paths would also work today, but the Engine API
 * documents them as deprecated and slated for removal, and Engine 29 answers only API >= 1.44.
 */
export const MAX_API_VERSION = '1.51';
export const FALLBACK_API_VERSION = '1.24';

export class EngineClient {
  /** Keep-alive connections per socket path: attestation is on the Workload API's hot path. */
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 32 });
  /** Negotiated API version per socket; concurrent first callers share one ping, a failed one is not kept. */
  private readonly versions = new Map<string, Promise<string>>();

  /** The API version to use on this socket (one `/_ping` per socket for this client's lifetime). */
  negotiatedVersion(socketPath: string, signal: AbortSignal): Promise<string> {
    let v = this.versions.get(socketPath);
    if (v === undefined) {
      v = this.get(socketPath, '/_ping', signal).then((res) => pickVersion(res.apiVersion));
      this.versions.set(socketPath, v);
      v.catch(() => this.versions.delete(socketPath));
    }
    return v;
  }

  async inspectContainer(socketPath: string, version: string | undefined, id: string, signal: AbortSignal): Promise<ContainerConfig> {
    const res = await this.get(socketPath, `${prefix(version)}/containers/${encodeURIComponent(id)}/json`, signal);
    if (res.status === 404) {
      throw new DockerAttestorError('container_not_found', `docker: container ${id} not found by the engine at ${socketPath}: ${engineMessage(res.body)}`);
    }
    const body = this.json(res, socketPath, 'container inspect');
    const cfg = isObject(body) ? body['Config'] : undefined;
    if (!isObject(cfg)) throw badResponse(socketPath, 'container inspect', 'no Config object');
    const labels = cfg['Labels'] ?? {};
    const env = cfg['Env'] ?? [];
    const image = cfg['Image'] ?? '';
    if (!isObject(labels) || !Object.values(labels).every((v) => typeof v === 'string')) {
      throw badResponse(socketPath, 'container inspect', 'Config.Labels is not a map of strings');
    }
    if (!Array.isArray(env) || !env.every((v) => typeof v === 'string')) throw badResponse(socketPath, 'container inspect', 'Config.Env is not a list of strings');
    if (typeof image !== 'string') throw badResponse(socketPath, 'container inspect', 'Config.Image is not a string');
    return { labels: labels as Record<string, string>, env: env as string[], image };
  }

  /** The image's Id (config digest, "sha256:…"). */
  async inspectImage(socketPath: string, version: string | undefined, image: string, signal: AbortSignal): Promise<string> {
    // Image references keep their '/', ':' and '@' as the Docker CLI sends them; the Engine routes on the rest of the path.
    const ref = encodeURIComponent(image).replace(/%2F/gi, '/').replace(/%3A/gi, ':').replace(/%40/g, '@');
    const res = await this.get(socketPath, `${prefix(version)}/images/${ref}/json`, signal);
    if (res.status === 404) throw new DockerAttestorError('image_not_found', `docker: image ${image} not found by the engine at ${socketPath}`);
    const body = this.json(res, socketPath, 'image inspect');
    const id = isObject(body) ? body['Id'] : undefined;
    if (typeof id !== 'string') throw badResponse(socketPath, 'image inspect', 'no Id string');
    return id;
  }

  close(): void {
    this.agent.destroy();
  }

  private json(res: { status: number; body: string }, socketPath: string, what: string): unknown {
    if (res.status < 200 || res.status > 299) {
      throw new DockerAttestorError('docker_api', `docker: ${what} at ${socketPath} answered HTTP ${res.status}: ${engineMessage(res.body)}`);
    }
    try {
      return JSON.parse(res.body);
    } catch (err) {
      throw new DockerAttestorError('docker_bad_response', `docker: ${what} at ${socketPath} did not answer JSON`, { cause: err });
    }
  }

  private get(socketPath: string, path: string, signal: AbortSignal): Promise<{ status: number; body: string; apiVersion: string | undefined }> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(aborted(signal));
        return;
      }
      const req = request(
        { socketPath, path, method: 'GET', agent: this.agent, headers: { Host: 'docker', Accept: 'application/json' }, signal, timeout: SOCKET_IDLE_TIMEOUT_MS },
        (res) => {
          readBody(res, MAX_BODY_BYTES).then(
            (body) => {
              const apiVersion = res.headers['api-version'];
              resolve({ status: res.statusCode ?? 0, body: body.toString('utf8'), apiVersion: typeof apiVersion === 'string' ? apiVersion : undefined });
            },
            (err: Error) => {
              if (err instanceof BodyTooLargeError) {
                req.destroy();
                reject(new DockerAttestorError('docker_bad_response', `docker: answer from ${socketPath} exceeds ${MAX_BODY_BYTES} bytes`));
              } else reject(transportError(err, socketPath, signal));
            },
          );
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${SOCKET_IDLE_TIMEOUT_MS} ms`)));
      req.on('error', (err) => reject(transportError(err, socketPath, signal)));
      req.end();
    });
  }
}

/** The engine's version when it is older than ours (moby's rule); ours when it is newer or unreadable. */
export function pickVersion(engine: string | undefined): string {
  const e = parseVersion(engine?.trim() ?? '');
  if (e === undefined) return FALLBACK_API_VERSION;
  const max = parseVersion(MAX_API_VERSION)!;
  return e[0] < max[0] || (e[0] === max[0] && e[1] < max[1]) ? `${e[0]}.${e[1]}` : MAX_API_VERSION;
}

function parseVersion(v: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)$/.exec(v);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

function prefix(version: string | undefined): string {
  return version === undefined ? '' : `/v${version}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function engineMessage(body: string): string {
  try {
    const m = (JSON.parse(body) as { message?: unknown }).message;
    if (typeof m === 'string') return m;
  } catch {
    // not JSON; fall through to the raw text
  }
  return body.slice(0, 200).trim() || '(empty body)';
}

function badResponse(socketPath: string, what: string, detail: string): DockerAttestorError {
  return new DockerAttestorError('docker_bad_response', `docker: ${what} at ${socketPath} returned an unexpected shape: ${detail}`);
}

export function aborted(signal: AbortSignal): DockerAttestorError {
  return new DockerAttestorError('aborted', 'docker: attestation cancelled by the caller', { cause: signal.reason });
}

function transportError(err: Error, socketPath: string, signal: AbortSignal): DockerAttestorError {
  if (err instanceof DockerAttestorError) return err;
  if (signal.aborted) return aborted(signal);
  return new DockerAttestorError(
    'docker_unavailable',
    `docker: cannot reach the container engine at unix://${socketPath}: ${err.message}; check that the daemon runs and the agent may open its socket (docker_socket_path / podman_socket_path)`,
    { cause: err },
  );
}
