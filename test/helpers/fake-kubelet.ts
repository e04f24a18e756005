/**
 * A FAKE kubelet. A real one runs here now (scripts/kube.sh, as root, after a ~10 min build), and
 * test/interop/kube/k8s-workload.test.ts compares both agents against it; this fake stays for unit
 * and integration tests that must run without root or a cluster, in seconds, and for what a real
 * kubelet does not produce on demand (a container ID listed in two pods, a 5xx or a malformed body,
 * a pod hidden for exactly N polls, a CA that did not sign it). It follows the kubelet's /pods API
 * (Kubernetes API reference, core/v1 PodList and Pod): `GET /pods` answers
 * a PodList (`{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[Pod...]}`) in
 * the Kubernetes schema, over real HTTPS on 127.0.0.1 with a certificate from a test CA
 * (SANs: the node name, `localhost` and IP 127.0.0.1), and authenticates like the real
 * one on the secure port: a bearer token or a client certificate signed by the client CA,
 * 401 Unauthorized otherwise (unless anonymous access is on). The read-only mode is plain
 * HTTP without authentication, as the kubelet's read-only port is.
 */
import { x509 } from '../../src/svid/x509-lib.js';
import { randomBytes, webcrypto } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

const crypto = webcrypto as unknown as Crypto;
const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
type KeyPair = { publicKey: CryptoKey; privateKey: CryptoKey };

export interface PemPair {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface KubeletPKI {
  /** Signs the kubelet's serving certificate (what kubelet_ca_path must hold). */
  readonly servingCa: PemPair;
  readonly serving: PemPair;
  /** Signs client certificates the kubelet accepts (--client-ca-file). */
  readonly clientCa: PemPair;
  readonly client: PemPair;
  /** A second, unrelated CA: trusting it instead must fail verification. */
  readonly otherCa: PemPair;
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0] as number) & 0x7f;
  return b.toString('hex');
}

async function keyPem(keys: KeyPair): Promise<string> {
  const der = Buffer.from(await crypto.subtle.exportKey('pkcs8', keys.privateKey));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END PRIVATE KEY-----\n`;
}

async function issue(
  subject: string,
  issuer: { cert: x509.X509Certificate; keys: KeyPair } | undefined,
  opts: { ca: boolean; dns?: string[]; ips?: string[]; eku?: string[] },
): Promise<{ cert: x509.X509Certificate; keys: KeyPair; pem: PemPair }> {
  const keys = (await crypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as KeyPair;
  const now = Date.now();
  const extensions: x509.Extension[] = [new x509.BasicConstraintsExtension(opts.ca, undefined, true)];
  if (opts.ca) extensions.push(new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true));
  else extensions.push(new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true));
  if (opts.eku) extensions.push(new x509.ExtendedKeyUsageExtension(opts.eku));
  const names = [...(opts.dns ?? []).map((value) => ({ type: 'dns' as const, value })), ...(opts.ips ?? []).map((value) => ({ type: 'ip' as const, value }))];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names));
  const base = { serialNumber: serial(), notBefore: new Date(now - 60_000), notAfter: new Date(now + 3600_000), signingAlgorithm: EC, extensions };
  const cert = issuer
    ? await x509.X509CertificateGenerator.create(
        { ...base, subject, issuer: issuer.cert.subject, publicKey: keys.publicKey, signingKey: issuer.keys.privateKey },
        crypto,
      )
    : await x509.X509CertificateGenerator.createSelfSigned({ ...base, name: subject, keys }, crypto);
  return { cert, keys, pem: { certPem: cert.toString('pem'), keyPem: await keyPem(keys) } };
}

export async function createKubeletPKI(nodeName: string): Promise<KubeletPKI> {
  const servingCa = await issue(`CN=${nodeName}-ca@${Date.now()}`, undefined, { ca: true });
  const serving = await issue(`CN=${nodeName}@${Date.now()}`, servingCa, {
    ca: false,
    dns: [nodeName, 'localhost'],
    ips: ['127.0.0.1'],
    eku: [x509.ExtendedKeyUsage.serverAuth],
  });
  const clientCa = await issue('CN=kubernetes', undefined, { ca: true });
  const client = await issue('CN=system:spire-agent, O=system:nodes', clientCa, { ca: false, eku: [x509.ExtendedKeyUsage.clientAuth] });
  const otherCa = await issue('CN=some-other-ca', undefined, { ca: true });
  return { servingCa: servingCa.pem, serving: serving.pem, clientCa: clientCa.pem, client: client.pem, otherCa: otherCa.pem };
}

export interface FakeKubeletOptions {
  /** 'secure' (HTTPS with authentication, default) or 'read-only' (HTTP, no authentication). */
  readonly mode?: 'secure' | 'read-only';
  readonly pki?: KubeletPKI;
  /** Accepted bearer tokens; change with setToken(). */
  readonly token?: string;
  /** Accept requests with no credentials (kubelet --anonymous-auth). */
  readonly anonymous?: boolean;
}

interface Entry {
  readonly pod: unknown;
  /** Served only once this many /pods requests have been answered without it. */
  hiddenFor: number;
}

export class FakeKubelet {
  /** Every /pods request, authorized or not. */
  requests = 0;
  unauthorized = 0;
  /** Authorization headers seen (to check token rotation). */
  readonly tokensSeen: string[] = [];
  private token: string | undefined;
  private entries: Entry[] = [];
  private failNext = 0;

  private constructor(
    private readonly server: http.Server,
    readonly port: number,
    readonly mode: 'secure' | 'read-only',
    private readonly anonymous: boolean,
    token: string | undefined,
  ) {
    this.token = token;
  }

  static async start(opts: FakeKubeletOptions = {}): Promise<FakeKubelet> {
    const mode = opts.mode ?? 'secure';
    let kubelet: FakeKubelet | undefined;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => kubelet!.handle(req, res);
    let server: http.Server;
    if (mode === 'secure') {
      if (!opts.pki) throw new Error('fake-kubelet: secure mode needs pki');
      server = https.createServer(
        {
          key: opts.pki.serving.keyPem,
          cert: opts.pki.serving.certPem,
          ca: opts.pki.clientCa.certPem,
          // As the kubelet: ask for a client certificate, but let token or anonymous requests through to authentication.
          requestCert: true,
          rejectUnauthorized: false,
        },
        handler,
      );
    } else {
      server = http.createServer(handler);
    }
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    kubelet = new FakeKubelet(server, (server.address() as AddressInfo).port, mode, opts.anonymous ?? false, opts.token);
    return kubelet;
  }

  /** Replaces the pod list. `hiddenForPolls` keeps a pod out of the next N responses. */
  setPods(pods: readonly unknown[], opts: { hiddenForPolls?: number } = {}): void {
    this.entries = pods.map((pod) => ({ pod, hiddenFor: opts.hiddenForPolls ?? 0 }));
  }

  addPod(pod: unknown, opts: { hiddenForPolls?: number } = {}): void {
    this.entries.push({ pod, hiddenFor: opts.hiddenForPolls ?? 0 });
  }

  setToken(token: string): void {
    this.token = token;
  }

  /** The next n authorized requests get 500. */
  failRequests(n: number): void {
    this.failNext = n;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private authenticated(req: http.IncomingMessage): boolean {
    if (this.mode === 'read-only') return true;
    const auth = req.headers.authorization;
    if (auth !== undefined) {
      this.tokensSeen.push(auth);
      // A presented token is authoritative: a wrong one is refused even if anonymous access is on.
      return this.token !== undefined && auth === `Bearer ${this.token}`;
    }
    const socket = req.socket as import('node:tls').TLSSocket;
    if (socket.authorized) return true;
    return this.anonymous;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.method !== 'GET' || req.url !== '/pods') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found\n');
      return;
    }
    this.requests++;
    if (!this.authenticated(req)) {
      this.unauthorized++;
      res.writeHead(401, { 'content-type': 'text/plain' }).end('Unauthorized');
      return;
    }
    if (this.failNext > 0) {
      this.failNext--;
      res.writeHead(500, { 'content-type': 'text/plain' }).end('Internal Server Error');
      return;
    }
    const items: unknown[] = [];
    for (const e of this.entries) {
      if (e.hiddenFor > 0) e.hiddenFor--;
      else items.push(e.pod);
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'PodList', apiVersion: 'v1', metadata: {}, items }));
  }
}
