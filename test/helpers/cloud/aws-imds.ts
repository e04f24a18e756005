/**
 * A FAKE EC2 instance metadata service (IMDS) on loopback, for tests only. It is not AWS: it serves
 * a recorded identity document in the shape AWS documents it, with signatures made by a throwaway
 * test key (so a real spire-server's aws_iid plugin parses them and then refuses the signature).
 *
 * The format follows AWS's documentation:
 *   - IMDSv2 session tokens: "Use the Instance Metadata Service to access instance metadata"
 *     (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html):
 *     `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds` (1-21600) answers the
 *     token as text and the TTL in the same header; GETs carry `X-aws-ec2-metadata-token`; with
 *     IMDSv1 disabled (HttpTokens=required) a GET without a valid token answers 401.
 *   - Instance identity documents: "Instance identity documents"
 *     (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-identity-documents.html) and
 *     "Verify the instance identity document" (…/verify-iid.html): the pretty-printed JSON document
 *     at /latest/dynamic/instance-identity/document, a base64 RSA SHA-256 signature at …/signature,
 *     and a base64 PKCS#7 (no PEM armour) at …/rsa2048.
 * The recorded answers are test/fixtures/aws-iid/{document.json,signature,rsa2048} (made with
 * openssl by a test key whose certificate says "not AWS").
 *
 * Switches (set the fields between requests): down (close), slowMs (delay before any answer),
 * tokenAnswer (200, an error status, or 'drop' to never answer the PUT, as when the hop limit
 * drops it), v1 (accept GETs without a token), dataStatus (answer every GET with this status),
 * document (replace the document text or bytes, e.g. malformed).
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { REPO } from '../spire/binaries.js';

const FIXTURES = join(REPO, 'test/fixtures/aws-iid');
export const RECORDED = Object.freeze({
  document: readFileSync(join(FIXTURES, 'document.json')),
  signature: readFileSync(join(FIXTURES, 'signature')),
  rsa2048: readFileSync(join(FIXTURES, 'rsa2048')),
});

export interface SeenRequest {
  method: string;
  path: string;
  token?: string;
  ttl?: string;
}

export class FakeIMDS {
  readonly requests: SeenRequest[] = [];
  readonly tokens = new Set<string>();
  slowMs = 0;
  tokenAnswer: 200 | 400 | 401 | 403 | 404 | 405 | 500 | 'drop' = 200;
  v1 = true;
  dataStatus: number | undefined;
  document: Buffer = RECORDED.document;
  signature: Buffer = RECORDED.signature;
  rsa2048: Buffer = RECORDED.rsa2048;
  private held: ServerResponse[] = [];

  private constructor(private readonly server: Server) {}

  static async start(): Promise<FakeIMDS> {
    const server = createServer();
    const imds = new FakeIMDS(server);
    server.on('request', (req, res) => imds.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return imds;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }
  /** What agent.conf's ec2_metadata_endpoint gets. */
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const token = req.headers['x-aws-ec2-metadata-token'];
    const ttl = req.headers['x-aws-ec2-metadata-token-ttl-seconds'];
    this.requests.push({ method: req.method ?? '', path: req.url ?? '', ...(typeof token === 'string' ? { token } : {}), ...(typeof ttl === 'string' ? { ttl } : {}) });
    req.resume();
    const answer = () => this.answer(req, res, typeof token === 'string' ? token : undefined, typeof ttl === 'string' ? ttl : undefined);
    if (this.slowMs > 0) setTimeout(answer, this.slowMs).unref();
    else answer();
  }

  private answer(req: IncomingMessage, res: ServerResponse, token: string | undefined, ttl: string | undefined): void {
    const text = (status: number, body: string | Buffer, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'text/plain', ...headers });
      res.end(body);
    };
    if (req.url === '/latest/api/token') {
      if (req.method !== 'PUT') return text(405, '');
      if (this.tokenAnswer === 'drop') return void this.held.push(res);
      if (this.tokenAnswer !== 200) return text(this.tokenAnswer, '');
      const n = Number(ttl);
      if (!Number.isInteger(n) || n < 1 || n > 21600) return text(400, '');
      const t = `AQAEA${randomBytes(24).toString('base64url')}==`;
      this.tokens.add(t);
      return text(200, t, { 'x-aws-ec2-metadata-token-ttl-seconds': String(n) });
    }
    if (req.method !== 'GET') return text(405, '');
    if (token !== undefined ? !this.tokens.has(token) : !this.v1) return text(401, '');
    if (this.dataStatus !== undefined) return text(this.dataStatus, '');
    const body = { '/latest/dynamic/instance-identity/document': this.document, '/latest/dynamic/instance-identity/signature': this.signature, '/latest/dynamic/instance-identity/rsa2048': this.rsa2048 }[req.url ?? ''];
    if (body === undefined) return text(404, '');
    return text(200, body);
  }

  /** Requests for one path, in order. */
  seen(path: string): SeenRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  async close(): Promise<void> {
    for (const r of this.held.splice(0)) r.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
