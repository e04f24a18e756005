/**
 * gcp_iit: attests a Compute Engine VM with the instance identity token Google signs for it (no
 * secret provisioned to the node). As spire-agent v1.13.3 (pkg/agent/plugin/nodeattestor/gcpiit):
 * one GET of
 *   http://<identity_token_host>/computeMetadata/v1/instance/service-accounts/<service_account>/identity?audience=spire-gcp-node-attestor&format=full
 * with `Metadata-Flavor: Google`; only 200 is accepted, and the body (the JWT) is the payload as
 * is (this agent first checks it has the JWT shape, where spire-agent sends any body). No retry, as spire-agent. spire-agent's request has no timeout at all, so a metadata server
 * that never answers stalls it; this agent gives up after 30 s, naming the URL.
 *
 * The token is never logged; the log carries its instance ID, project and zone when the token's
 * claims can be read (they are not checked here: the server verifies the token).
 */
import { request, type IncomingMessage } from 'node:http';
import type { Logger } from '../../../telemetry/logger.js';
import { NodeAttestorError } from '../errors.js';
import type { AttestationStream, NodeAttestor } from '../types.js';
import { GCP_IIT, type GcpIitConfig } from './config.js';

export { GCP_IIT, parseGcpIitConfig, type GcpIitConfig } from './config.js';

export const AUDIENCE = 'spire-gcp-node-attestor';
const TIMEOUT_MS = 30_000;
const MAX_BODY = 64 * 1024;

const ioError = (msg: string, cause?: unknown) => new NodeAttestorError('node_attestor_io', `nodeattestor(gcp_iit): ${msg}`, { cause });

/** The URL spire-agent asks: Go's url.URL with url.Values.Encode (keys sorted). */
export function identityTokenURL(c: GcpIitConfig): string {
  const u = new URL(`http://${c.identityTokenHost}`);
  u.pathname = `/computeMetadata/v1/instance/service-accounts/${c.serviceAccount}/identity`;
  u.search = new URLSearchParams([['audience', AUDIENCE], ['format', 'full']]).toString();
  return u.toString();
}

/**
 * Why `token` is not a compact JWS (three base64url parts, the first a JSON object with `alg`),
 * or undefined when it is one. spire-agent sends any body and its server refuses it ("unable to
 * parse the identity token"); here it is refused on the node with the URL named, before anything
 * is sent. Never quotes the token.
 */
export function notAJWT(token: Buffer): string | undefined {
  const parts = token.toString('latin1').split('.');
  if (parts.length !== 3) return `${parts.length} dot-separated parts, want 3`;
  if (!parts.every((p, i) => /^[A-Za-z0-9_-]*$/.test(p) && (p !== '' || i === 2))) return 'a part is not base64url text';
  try {
    const header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as unknown;
    if (typeof header !== 'object' || header === null || typeof (header as { alg?: unknown }).alg !== 'string') return 'its header has no "alg"';
  } catch {
    return 'its header is not JSON';
  }
  return undefined;
}

/** What may be logged of a token: a few claims of its payload, if it has the JWT shape. */
function summarize(token: Buffer): Record<string, unknown> {
  try {
    const claims = JSON.parse(Buffer.from(token.toString('ascii').split('.')[1] ?? '', 'base64url').toString('utf8')) as { google?: { compute_engine?: Record<string, unknown> } };
    const ce = claims.google?.compute_engine ?? {};
    return { instance_id: ce['instance_id'], project_id: ce['project_id'], zone: ce['zone'], token_bytes: token.length };
  } catch {
    return { token_bytes: token.length };
  }
}

export class GcpIitAttestor implements NodeAttestor {
  readonly name = GCP_IIT;

  constructor(
    private readonly config: GcpIitConfig,
    private readonly deps: { log: Logger; timeoutMs?: number },
  ) {}

  async payload(signal: AbortSignal): Promise<Uint8Array> {
    const url = identityTokenURL(this.config);
    const timeoutMs = this.deps.timeoutMs ?? TIMEOUT_MS;
    const res = await new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
      const req = request(url, { headers: { 'Metadata-Flavor': 'Google', 'user-agent': 'spiffe-agent' }, agent: false, signal });
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      req.on('error', (err) => {
        clearTimeout(timer);
        const refused = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH/.test((err as NodeJS.ErrnoException).code ?? err.message);
        reject(
          refused
            ? ioError(`no metadata service at http://${this.config.identityTokenHost}: this node is not on Google Cloud, or the metadata server is unreachable (${err.message})`, err)
            : ioError(`GET ${url}: ${err.message}`, err),
        );
      });
      req.on('response', (r: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        r.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY) req.destroy(new Error(`answer larger than ${MAX_BODY} bytes`));
          else chunks.push(c);
        });
        r.on('end', () => {
          clearTimeout(timer);
          resolve({ status: r.statusCode ?? 0, body: Buffer.concat(chunks) });
        });
      });
      req.end();
    });
    if (res.status !== 200) {
      const hint = res.status === 404 ? `: no service account ${JSON.stringify(this.config.serviceAccount)} on this VM? (service_account)` : res.status === 401 || res.status === 403 ? ': the metadata server refused the request (a proxy in the way, or the Metadata-Flavor header stripped?)' : '';
      throw ioError(`GET ${url} answered HTTP ${res.status}, want 200${hint}`);
    }
    if (res.body.length === 0) throw ioError(`GET ${url} answered an empty identity token`);
    const bad = notAJWT(res.body);
    if (bad !== undefined) throw ioError(`malformed identity token from ${url}: not a JWT (${bad})`);
    this.deps.log.info(summarize(res.body), 'Attesting with GCE instance identity token');
    return new Uint8Array(res.body);
  }

  async attest(stream: AttestationStream, signal: AbortSignal): Promise<void> {
    const payload = await this.payload(signal);
    const challenge = await stream.sendAttestationData({ type: GCP_IIT, payload });
    if (challenge !== undefined) throw new NodeAttestorError('node_attestor_unexpected_challenge', 'nodeattestor(gcp_iit): server sent a challenge; gcp_iit expects none');
  }
}

export function createGcpIitAttestor(config: GcpIitConfig, deps: { log: Logger }): NodeAttestor {
  return new GcpIitAttestor(config, deps);
}
