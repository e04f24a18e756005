/**
 * A FAKE Azure Instance Metadata Service (IMDS) managed-identity token endpoint, for tests only.
 * It is not Azure: it issues a token in the shape Microsoft documents, signed by a throwaway RS256
 * test key (so a real spire-server's azure_msi plugin, which checks Microsoft's keys, refuses it).
 *
 * The format follows Microsoft's documentation, "How to use managed identities for Azure
 * resources on an Azure VM to acquire an access token"
 * (https://learn.microsoft.com/en-us/entra/identity/managed-identities-azure-resources/how-to-use-vm-token):
 * `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=<resource>` with the
 * `Metadata: true` header answers JSON {access_token, refresh_token, expires_in, expires_on,
 * not_before, resource, token_type} (the times as decimal strings); without the header it
 * answers 400 {"error":"invalid_request","error_description":"Required metadata header not
 * specified"}; with no identity assigned, 400 {"error":"invalid_request","error_description":
 * "Identity not found"}. The token is a JWT (RS256, `kid`) with aud = resource,
 * iss https://sts.windows.net/<tid>/, tid, oid, sub (= the principal's object ID), appid,
 * xms_mirid, iat, nbf, exp (Microsoft identity platform access token claims reference).
 *
 * It serves on loopback for unit tests, or on a listening socket handed to it (the interop test
 * passes one bound to 169.254.169.254 inside a network namespace: test/helpers/cloud/netns.ts).
 * Switches: down (close), slowMs, status (answer every request with it and an IMDS-style error
 * body), body (replace the whole answer, e.g. malformed).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { SignJWT } from 'jose';

export interface SeenAzureRequest {
  method: string;
  path: string;
  metadata?: string;
}

export const AZURE_CLAIMS = Object.freeze({
  tid: '72f988bf-86f1-41af-91ab-2d7cd011db47',
  oid: '9d0c6e62-3f4f-4c33-8e3f-5a1b0c1d2e3f',
  appid: '5c7e2c4f-1b2a-4d3e-9f8a-7b6c5d4e3f2a',
  xms_mirid: '/subscriptions/11111111-2222-3333-4444-555555555555/resourcegroups/spiffe-agent-test/providers/Microsoft.Compute/virtualMachines/node-1',
});

export class FakeAzureIMDS {
  readonly requests: SeenAzureRequest[] = [];
  slowMs = 0;
  status: number | undefined;
  /** Replaces the whole 200 answer when set. */
  body: Buffer | undefined;
  /** The token the last good answer carried (what the agents must send). */
  token = '';
  private readonly key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  private readonly kid = randomBytes(20).toString('hex');
  /** One token per resource, so agents run one after the other get the same answer. */
  private readonly issued = new Map<string, Promise<string>>();

  private constructor(private readonly server: Server) {}

  /** On `listenOn` (a listening socket made elsewhere), or on 127.0.0.1 with a free port. */
  static async start(listenOn?: NetServer): Promise<FakeAzureIMDS> {
    const server = createServer();
    const f = new FakeAzureIMDS(server);
    server.on('request', (req, res) => f.handle(req, res));
    await new Promise<void>((resolve) => (listenOn ? server.listen(listenOn, resolve) : server.listen(0, '127.0.0.1', resolve)));
    return f;
  }

  /** The base URL (for the unit tests' seam; agents in the namespace use http://169.254.169.254). */
  get base(): string {
    const a = this.server.address() as AddressInfo;
    return `http://${a.address}:${a.port}`;
  }

  private tokenFor(resource: string): Promise<string> {
    let t = this.issued.get(resource);
    if (t === undefined) this.issued.set(resource, (t = this.sign(resource)));
    return t;
  }

  private async sign(resource: string): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ tid: AZURE_CLAIMS.tid, oid: AZURE_CLAIMS.oid, appid: AZURE_CLAIMS.appid, xms_mirid: AZURE_CLAIMS.xms_mirid, idtyp: 'app', ver: '1.0' })
      .setProtectedHeader({ alg: 'RS256', kid: this.kid, typ: 'JWT', x5t: this.kid })
      .setIssuer(`https://sts.windows.net/${AZURE_CLAIMS.tid}/`)
      .setAudience(resource)
      .setSubject(AZURE_CLAIMS.oid)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + 86_399)
      .sign(this.key);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const metadata = req.headers['metadata'];
    this.requests.push({ method: req.method ?? '', path: req.url ?? '', ...(typeof metadata === 'string' ? { metadata } : {}) });
    req.resume();
    const send = (status: number, body: string | Buffer) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', server: 'IMDS/150.870.65.1854' });
      res.end(body);
    };
    const error = (status: number, error: string, description: string) => send(status, JSON.stringify({ error, error_description: description }));
    const answer = async () => {
      const u = new URL(req.url ?? '', 'http://x');
      if (metadata !== 'true') return error(400, 'invalid_request', 'Required metadata header not specified');
      if (this.status !== undefined) return error(this.status, this.status === 400 ? 'invalid_request' : 'unknown_error', this.status === 400 ? 'Identity not found' : `status ${this.status}`);
      if (u.pathname !== '/metadata/identity/oauth2/token') return send(404, 'Not Found');
      if (u.searchParams.get('api-version') === null) return error(400, 'invalid_request', 'Required query variable \'api-version\' is missing');
      const resource = u.searchParams.get('resource') ?? '';
      if (resource === '') return error(400, 'invalid_request', 'Required query variable \'resource\' is missing');
      if (this.body !== undefined) return send(200, this.body);
      this.token = await this.tokenFor(resource);
      const now = Math.floor(Date.now() / 1000);
      return send(200, JSON.stringify({ access_token: this.token, refresh_token: '', expires_in: '86399', expires_on: String(now + 86_399), not_before: String(now), resource, token_type: 'Bearer' }));
    };
    const run = () => void answer().catch((err: unknown) => send(500, String(err)));
    if (this.slowMs > 0) setTimeout(run, this.slowMs).unref();
    else run();
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
