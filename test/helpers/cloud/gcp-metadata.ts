/**
 * A FAKE Google Compute Engine metadata server on loopback, for tests only. It is not Google: it
 * serves an instance identity token in the shape Google documents, signed by a throwaway RS256
 * test key (so a real spire-server's gcp_iit plugin, which checks Google's keys, refuses it).
 *
 * The format follows Google's documentation, "Verify the identity of instances"
 * (https://cloud.google.com/compute/docs/instances/verifying-instance-identity):
 * `GET /computeMetadata/v1/instance/service-accounts/<account>/identity?audience=<aud>&format=full`
 * with the `Metadata-Flavor: Google` header (without it the server answers 403) returns a JWT
 * (RS256, `kid` of a Google key) whose claims are iss https://accounts.google.com, aud, azp, sub,
 * iat, exp and, with format=full, `google.compute_engine` {project_id, project_number, zone,
 * instance_id, instance_name, instance_creation_timestamp}.
 *
 * Switches: down (close), slowMs, status (answer every request with it), token (replace the body).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';

export interface SeenGcpRequest {
  path: string;
  flavor?: string;
}

export const GCE_CLAIMS = Object.freeze({
  project_id: 'spiffe-agent-test',
  project_number: 123456789012,
  zone: 'us-central1-a',
  instance_id: '5830284924582309217',
  instance_name: 'node-1',
  instance_creation_timestamp: 1764633600,
});

export class FakeGCEMetadata {
  readonly requests: SeenGcpRequest[] = [];
  slowMs = 0;
  status: number | undefined;
  token: Buffer = Buffer.alloc(0);

  private constructor(private readonly server: Server) {}

  static async start(): Promise<FakeGCEMetadata> {
    const server = createServer();
    const f = new FakeGCEMetadata(server);
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const now = Math.floor(Date.now() / 1000);
    const jwt = await new SignJWT({ azp: '102030405060708090100', email: 'node@spiffe-agent-test.iam.gserviceaccount.com', google: { compute_engine: GCE_CLAIMS } })
      .setProtectedHeader({ alg: 'RS256', kid: randomBytes(20).toString('hex'), typ: 'JWT' })
      .setIssuer('https://accounts.google.com')
      .setAudience('spire-gcp-node-attestor')
      .setSubject('102030405060708090100')
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(privateKey);
    f.token = Buffer.from(jwt);
    server.on('request', (req, res) => f.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return f;
  }

  /** What agent.conf's identity_token_host gets. */
  get host(): string {
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const flavor = req.headers['metadata-flavor'];
    this.requests.push({ path: req.url ?? '', ...(typeof flavor === 'string' ? { flavor } : {}) });
    req.resume();
    const answer = () => {
      const send = (status: number, body: string | Buffer) => {
        res.writeHead(status, { 'content-type': 'text/html', 'metadata-flavor': 'Google' });
        res.end(body);
      };
      if (flavor !== 'Google') return send(403, 'Missing required header: Metadata-Flavor');
      if (this.status !== undefined) return send(this.status, '');
      if (!/^\/computeMetadata\/v1\/instance\/service-accounts\/[^/]+\/identity\?/.test(req.url ?? '')) return send(404, 'Not Found');
      const q = new URL(req.url ?? '', 'http://x').searchParams;
      if (q.get('audience') === null) return send(400, 'non-empty audience parameter required');
      return send(200, this.token);
    };
    if (this.slowMs > 0) setTimeout(answer, this.slowMs).unref();
    else answer();
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
