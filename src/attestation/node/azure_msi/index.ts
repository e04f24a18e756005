/**
 * azure_msi: attests an Azure VM with a token for its managed identity, which Azure issues to
 * the VM (no secret provisioned to the node). As spire-agent v1.13.3
 * (pkg/agent/plugin/nodeattestor/azuremsi, pkg/common/plugin/azure): one GET of
 *   http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=<resource_id>
 * with `Metadata: true`; only 200 is accepted; the answer's `access_token` is sent as
 * `{"token":"<access token>"}`, written as Go's json.Marshal writes it. No retry, as spire-agent
 * (the agent retries the whole attestation). spire-agent's request has no timeout, so a node where
 * nothing answers at 169.254.169.254 stalls it; this agent gives up after 5 s without a connection
 * and 30 s without an answer, naming the URL.
 *
 * The token is never logged; the log carries the claims the server builds the agent ID from
 * (tenant `tid`, principal `sub`) when they can be read. They are not checked here: the server
 * verifies the token.
 */
import { request, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../../../telemetry/logger.js';
import { NodeAttestorError } from '../errors.js';
import { goJsonObject } from '../go-json.js';
import type { AttestationStream, NodeAttestor } from '../types.js';
import { AZURE_MSI, type AzureMsiConfig } from './config.js';
import { readAccessToken } from './token-response.js';

export { AZURE_MSI, parseAzureMsiConfig, type AzureMsiConfig } from './config.js';

/** The only address spire-agent v1.13.3 asks; not configurable there, so not here. */
export const IMDS_BASE = 'http://169.254.169.254';
export const API_VERSION = '2018-02-01';
const CONNECT_TIMEOUT_MS = 5_000;
const TIMEOUT_MS = 30_000;
const MAX_BODY = 64 * 1024;

const ioError = (msg: string, cause?: unknown) => new NodeAttestorError('node_attestor_io', `nodeattestor(azure_msi): ${msg}`, { cause });

/** Go's url.QueryEscape: letters, digits and -_.~ kept, space as +, every other byte %XX upper-case. */
export function goQueryEscape(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    if ((b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2d || b === 0x5f || b === 0x2e || b === 0x7e) out += String.fromCharCode(b);
    else if (b === 0x20) out += '+';
    else out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The URL spire-agent asks: its query re-encoded by url.Values.Encode (keys sorted). */
export function tokenURL(c: AzureMsiConfig, base = IMDS_BASE): string {
  return `${base}/metadata/identity/oauth2/token?api-version=${API_VERSION}&resource=${goQueryEscape(c.resourceId)}`;
}

/** The payload spire-agent sends: azure.MSIAttestationData marshalled by encoding/json. */
export function msiPayload(token: string): Uint8Array {
  return Buffer.from(goJsonObject([['token', token]]), 'utf8');
}

/** What may be logged of a token: the claims the agent ID is made of, if it has the JWT shape. */
function summarize(token: string): Record<string, unknown> {
  try {
    const c = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
    return { tenant_id: c['tid'], principal_id: c['sub'], token_bytes: token.length };
  } catch {
    return { token_bytes: token.length };
  }
}

/** Why an error status, in the words of Microsoft's managed-identity documentation. */
function statusHint(status: number): string {
  if (status === 400) return ': no managed identity is assigned to this VM, or resource_id is not a resource Azure knows';
  if (status === 401 || status === 403) return ': the metadata service refused the request (a proxy in the way, or the Metadata header stripped?)';
  if (status === 404) return ': the identity endpoint is not available (IMDS updating, or no managed identity here); the agent retries';
  if (status === 429) return ': too many requests to the metadata service; the agent retries';
  if (status >= 500) return ': a transient metadata service error; the agent retries';
  return '';
}

/** The `error`/`error_description` of an IMDS error answer (they say why; they hold no secret), bounded. */
function errorDetail(body: Buffer): string {
  try {
    const e = JSON.parse(body.toString('utf8')) as { error?: unknown; error_description?: unknown };
    const parts = [e.error, e.error_description].filter((x): x is string => typeof x === 'string' && x !== '');
    return parts.length > 0 ? ` (${parts.join(': ').slice(0, 200)})` : '';
  } catch {
    return '';
  }
}

export interface AzureMsiDeps {
  readonly log: Logger;
  /** Tests only: where the metadata service is (spire-agent has no such setting, so agent.conf has none). */
  readonly imdsBase?: string;
  readonly connectTimeoutMs?: number;
  readonly timeoutMs?: number;
}

export class AzureMsiAttestor implements NodeAttestor {
  readonly name = AZURE_MSI;

  constructor(
    private readonly config: AzureMsiConfig,
    private readonly deps: AzureMsiDeps,
  ) {}

  private get(url: string, signal: AbortSignal): Promise<{ status: number; body: Buffer }> {
    const base = this.deps.imdsBase ?? IMDS_BASE;
    const connectMs = this.deps.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
    const timeoutMs = this.deps.timeoutMs ?? TIMEOUT_MS;
    const notAzure = (why: string, cause?: unknown) => ioError(`no metadata service at ${base} (${why}): this node is not on Azure, or the metadata service is unreachable from it (a network namespace or firewall in the way?)`, cause);
    return new Promise((resolve, reject) => {
      const timers: NodeJS.Timeout[] = [];
      const settle = (f: () => void) => {
        for (const t of timers) clearTimeout(t);
        f();
      };
      const req = request(url, { headers: { Metadata: 'true', 'user-agent': 'spiffe-agent' }, agent: false, signal });
      let failure: NodeAttestorError | undefined;
      const fail = (e: NodeAttestorError) => {
        failure ??= e;
        req.destroy(e);
      };
      timers.push(setTimeout(() => fail(ioError(`GET ${url}: the metadata service accepted the connection but did not answer within ${timeoutMs} ms`)), timeoutMs));
      req.on('socket', (s: Socket) => {
        if (!s.connecting) return;
        const t = setTimeout(() => fail(notAzure(`no connection within ${connectMs} ms`)), connectMs);
        timers.push(t);
        s.once('connect', () => clearTimeout(t));
      });
      req.on('error', (err) => {
        const code = (err as NodeJS.ErrnoException).code ?? '';
        const refused = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|EADDRNOTAVAIL/.test(code);
        settle(() => reject(failure ?? (refused ? notAzure(err.message, err) : ioError(`GET ${url}: ${err.message}`, err))));
      });
      req.on('response', (r: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        r.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY) fail(ioError(`GET ${url}: answer larger than ${MAX_BODY} bytes`));
          else chunks.push(c);
        });
        r.on('end', () => settle(() => resolve({ status: r.statusCode ?? 0, body: Buffer.concat(chunks) })));
      });
      req.end();
    });
  }

  async payload(signal: AbortSignal): Promise<Uint8Array> {
    const url = tokenURL(this.config, this.deps.imdsBase);
    const res = await this.get(url, signal);
    if (res.status !== 200) throw ioError(`GET ${url} answered HTTP ${res.status}, want 200${statusHint(res.status)}${errorDetail(res.body)}`);
    const answer = readAccessToken(res.body);
    if (!answer.ok) throw ioError(`malformed managed-identity token answer from ${url}: ${answer.why}`);
    this.deps.log.info(summarize(answer.token), 'Attesting with Azure managed identity token');
    return msiPayload(answer.token);
  }

  async attest(stream: AttestationStream, signal: AbortSignal): Promise<void> {
    const payload = await this.payload(signal);
    const challenge = await stream.sendAttestationData({ type: AZURE_MSI, payload });
    if (challenge !== undefined) throw new NodeAttestorError('node_attestor_unexpected_challenge', 'nodeattestor(azure_msi): server sent a challenge; azure_msi expects none');
  }
}

export function createAzureMsiAttestor(config: AzureMsiConfig, deps: { log: Logger }): NodeAttestor {
  return new AzureMsiAttestor(config, { log: deps.log });
}
