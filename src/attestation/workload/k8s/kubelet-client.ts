/**
 * GET /pods from the local kubelet, as spire-agent's k8s attestor does it: the secure
 * port over TLS (bearer token, client certificate or anonymous), or the read-only port
 * over plain HTTP on 127.0.0.1. Connections are kept alive between polls.
 *
 * Credentials and the CA are re-read by reload(): service account tokens are rotated
 * by the kubelet, so a token read once at start would expire under a long-running agent.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { BodyTooLargeError, readBody } from '../../../net/read-body.js';
import { INPUT_LIMITS, readBoundedFileSync } from '../../../storage/bounded-file.js';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { SpiffeAgentError, type ErrorCodes } from '../../../errors.js';
import type { KubeletConnectionConfig } from './config.js';

declare module '../../../errors.js' {
  interface ErrorCodes {
    kubelet: 'kubelet_config' | 'kubelet_request';
  }
}

/** Codes: `kubelet_config` (files missing or unparsable), `kubelet_request` (transport, TLS or HTTP status). */
export class KubeletError extends SpiffeAgentError<ErrorCodes['kubelet']> {}

const REQUEST_TIMEOUT_MS = 10_000;
/** A PodList of a few hundred pods is a few MB; anything far larger is not a kubelet. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

export interface KubeletClientOptions {
  /** DNS seam for tests that give the fake kubelet a node name. */
  readonly lookup?: LookupFunction | undefined;
  readonly timeoutMs?: number | undefined;
}

interface TlsMaterial {
  readonly ca: string | undefined;
  readonly cert: string | undefined;
  readonly key: string | undefined;
}

export class KubeletClient {
  readonly url: string;
  private agent: http.Agent;
  private tls: TlsMaterial | undefined;
  private token: string | undefined;

  /** Reads the CA and credentials now, so a missing file fails at start as in spire-agent. */
  constructor(
    private readonly config: KubeletConnectionConfig,
    private readonly opts: KubeletClientOptions = {},
  ) {
    const host = config.secure && config.nodeName !== '' ? config.nodeName : '127.0.0.1';
    this.url = `${config.secure ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${config.port}/pods`;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    this.reload();
  }

  /**
   * Re-reads token, CA and client keypair. The connection pool is replaced only when
   * the TLS material changed; a new token alone keeps the open connections.
   */
  reload(): void {
    if (!this.config.secure) return;
    const { ca, cert, key, token } = loadMaterial(this.config);
    this.token = token;
    const prev = this.tls;
    if (prev && prev.ca === ca && prev.cert === cert && prev.key === key) return;
    const old = this.agent;
    this.tls = { ca, cert, key };
    this.agent = new https.Agent({
      keepAlive: true,
      maxSockets: 4,
      rejectUnauthorized: !this.config.skipKubeletVerification,
      ...(ca === undefined ? {} : { ca }),
      ...(cert === undefined ? {} : { cert, key }),
      // Without a node name we dial 127.0.0.1, which kubelet certificates rarely name:
      // the chain is still verified against the CA, the host name is not (as spire-agent).
      ...(this.config.nodeName === '' ? { checkServerIdentity: () => undefined } : {}),
    });
    old.destroy();
  }

  /** The raw PodList JSON. */
  async getPodList(signal: AbortSignal): Promise<Buffer> {
    const timeout = AbortSignal.timeout(this.opts.timeoutMs ?? REQUEST_TIMEOUT_MS);
    const both = AbortSignal.any([signal, timeout]);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token !== undefined) headers['authorization'] = `Bearer ${this.token}`;
    const lib = this.config.secure ? https : http;
    return new Promise<Buffer>((resolve, reject) => {
      const req = lib.get(
        this.url,
        { agent: this.agent, headers, signal: both, ...(this.opts.lookup ? { lookup: this.opts.lookup } : {}) },
        (res) => {
          readBody(res, MAX_BODY_BYTES).then(
            (body) => {
              if (res.statusCode === 200) return resolve(body);
              reject(this.fail(`unexpected status code on pods response: ${res.statusCode} ${body.subarray(0, 1024).toString('utf8').trim()}${statusHint(res.statusCode)}`));
            },
            (err: Error) =>
              reject(
                err instanceof BodyTooLargeError
                  ? this.fail(`the pods response is larger than ${MAX_BODY_BYTES} bytes`)
                  : this.fail(`unable to read pods response: ${err.message}`, err),
              ),
          );
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (timeout.aborted) return reject(this.fail(`no response within ${this.opts.timeoutMs ?? REQUEST_TIMEOUT_MS} ms`, err));
        if (signal.aborted) return reject(signal.reason ?? err);
        reject(this.fail(`unable to perform request: ${describeTransportError(err, this.config)}`, err));
      });
    });
  }

  close(): void {
    this.agent.destroy();
  }

  private fail(message: string, cause?: unknown): KubeletError {
    return new KubeletError('kubelet_request', `k8s: kubelet ${this.url}: ${message}`, { cause });
  }
}

/** Reads and checks what the client reads at start (CA, token or keypair) without connecting: `validate` runs it. */
export function checkKubeletFiles(config: KubeletConnectionConfig): void {
  if (config.secure) loadMaterial(config);
}

function loadMaterial(config: KubeletConnectionConfig): TlsMaterial & { token: string | undefined } {
  const read = (what: string, path: string): string => {
    try {
      // Bounded, regular files only: a FIFO here would hang attestation set-up for good.
      return readBoundedFileSync(path, { maxBytes: what === 'token' ? INPUT_LIMITS.token : INPUT_LIMITS.bundle, what });
    } catch (err) {
      throw new KubeletError('kubelet_config', `k8s: unable to load ${what} from ${path}: ${(err as Error).message.replace(/^input: /, '')}`, { cause: err });
    }
  };
  let ca: string | undefined;
  if (!config.skipKubeletVerification) {
    ca = read('kubelet CA', config.kubeletCaPath);
    parseCertificates(ca, config.kubeletCaPath);
  }
  const auth = config.auth;
  if (auth.kind === 'anonymous') return { ca, cert: undefined, key: undefined, token: undefined };
  if (auth.kind === 'token') {
    const token = read('token', auth.tokenPath).trim();
    if (token === '') throw new KubeletError('kubelet_config', `k8s: unable to load token: ${auth.tokenPath} is empty`);
    return { ca, cert: undefined, key: undefined, token };
  }
  const cert = read('certificate', auth.certificatePath);
  const key = read('private key', auth.privateKeyPath);
  try {
    const leaf = parseCertificates(cert, auth.certificatePath)[0]!;
    if (!leaf.checkPrivateKey(createPrivateKey(key))) throw new Error('the private key does not match the certificate');
  } catch (err) {
    throw new KubeletError(
      'kubelet_config',
      `k8s: unable to load keypair ${auth.certificatePath} / ${auth.privateKeyPath}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return { ca, cert, key, token: undefined };
}

function parseCertificates(pem: string, path: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  try {
    if (blocks.length === 0) throw new Error('no PEM CERTIFICATE block found');
    return blocks.map((b) => new X509Certificate(b));
  } catch (err) {
    throw new KubeletError('kubelet_config', `k8s: unable to parse kubelet CA in ${path}: ${(err as Error).message}`, { cause: err });
  }
}

const CHAIN_ERRORS = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
]);

function describeTransportError(err: NodeJS.ErrnoException, config: KubeletConnectionConfig): string {
  const code = err.code ?? '';
  if (CHAIN_ERRORS.has(code)) {
    return `the kubelet's certificate is not trusted (${code}: ${err.message}); check that kubelet_ca_path (${config.kubeletCaPath}) holds the CA that signed it, or set skip_kubelet_verification = true`;
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return `the kubelet's certificate does not name "${config.nodeName}" (${err.message}); check node_name / node_name_env`;
  }
  return err.message;
}

function statusHint(status: number | undefined): string {
  if (status === 401) return ' (the kubelet did not accept our credentials; check token_path or certificate_path/private_key_path)';
  if (status === 403) return ' (authenticated but not authorized: grant nodes/proxy to the agent\'s identity)';
  return '';
}
