/**
 * mTLS with X509-SVIDs for node:tls and node:https, shaped like go-spiffe's spiffetls/tlsconfig:
 * each side presents the current SVID from an X509Source, verifies the peer against the bundle of
 * the peer's trust domain from the same source (never the system CAs), then asks an Authorizer.
 *
 * Node has no verify callback, so the pieces sit where Node lets them: OpenSSL checks the chain
 * against the source's authorities during the handshake (`ca`, `rejectUnauthorized`); a client then
 * applies the SPIFFE checks and the authorizer in `checkServerIdentity`, before it sends anything;
 * a server applies them in 'secureConnection' (hookMTLSServer), before any byte is read. Rotation:
 * a server's context is replaced with `setSecureContext` on every update of the source, so a server
 * that runs for months keeps presenting a current SVID; client options are built per connection
 * (MTLSAgent does that for https keep-alive pools). Connections already open are not disturbed.
 */
import type { SecureContextOptions, TLSSocket, ConnectionOptions, DetailedPeerCertificate, Server, TlsOptions } from 'node:tls';
import { constants } from 'node:crypto';
import { Agent, type AgentOptions, type RequestOptions } from 'node:https';
import type { Duplex } from 'node:stream';
import { pemEncodeCertificates, pemEncodePrivateKey, type BundleSet, type X509Bundle, type X509SVID } from '../../svid/index.js';
import type { X509Context } from '../convert.js';
import type { Authorizer } from './authorizer.js';
import { verifyPeerChain } from './verify.js';

/** What the helpers need from an X509Source (an X509Source is one). */
export interface X509SourceLike {
  getX509SVID(): X509SVID;
  getX509Context(): X509Context;
  onUpdate(listener: (ctx: X509Context) => void): () => void;
}

/** The SVID to present and the authorities to trust, as node:tls wants them. */
function contextOptions(svid: X509SVID, bundles: BundleSet<X509Bundle>): SecureContextOptions {
  const ca = bundles.bundles().flatMap((b) => b.authorities());
  return {
    key: pemEncodePrivateKey(svid.privateKeyDer),
    cert: pemEncodeCertificates(svid.certificates),
    ca: pemEncodeCertificates(ca),
  };
}

function current(source: X509SourceLike): SecureContextOptions {
  return contextOptions(source.getX509SVID(), source.getX509Context().bundles);
}

/**
 * No session tickets: a resumed session skips both certificates, so a peer could come back with
 * the identity of a handshake made before a rotation (or before its SVID expired). Every
 * connection is a full handshake with the certificates current on both sides.
 */
function serverContext(source: X509SourceLike, extra: SecureContextOptions | undefined): SecureContextOptions {
  return { ...extra, ...current(source), secureOptions: (extra?.secureOptions ?? 0) | constants.SSL_OP_NO_TICKET };
}

/** The peer's chain as node:tls links it (leaf first, up to the authority OpenSSL verified it with). */
export function peerChain(cert: DetailedPeerCertificate | Record<string, never> | undefined): Uint8Array[] {
  const out: Uint8Array[] = [];
  let c = cert as DetailedPeerCertificate | undefined;
  while (c && c.raw && out.length < 16) {
    out.push(c.raw);
    const up = c.issuerCertificate;
    if (!up || up === c || up.fingerprint256 === c.fingerprint256) break;
    c = up;
  }
  return out;
}

/** Verifies and authorizes a peer; returns the error to refuse it with, or undefined. */
function refusal(source: X509SourceLike, authorizer: Authorizer, chain: Uint8Array[]): Error | undefined {
  try {
    const verified = verifyPeerChain(chain, source.getX509Context().bundles);
    authorizer(verified.id, verified.chain);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

/**
 * Options for tls.createServer / https.createServer / http2.createSecureServer: the source's
 * current SVID, its authorities as the only CAs, and a client certificate required. `extra` is
 * merged in (minVersion, ciphers, ALPNProtocols, ...).
 *
 * These options do not authorize anyone: call hookMTLSServer(server, source, authorizer) on the
 * server they build (with the same `extra`), or it accepts every client whose chain leads to any
 * authority of any trust domain in the source, whatever its SPIFFE ID, without the SPIFFE checks
 * (one URI SAN, an authority of the ID's own trust domain), and keeps presenting the SVID of the
 * moment it was built. go-spiffe's tlsconfig.MTLSServerConfig takes the authorizer itself and runs
 * it in the handshake's VerifyPeerCertificate; node:tls offers servers no callback after the
 * client's certificate, so the hook does it on 'secureConnection', before any byte is read.
 */
export function mtlsServerOptions(source: X509SourceLike, extra: TlsOptions = {}): TlsOptions {
  return { ...extra, ...serverContext(source, extra), requestCert: true, rejectUnauthorized: true };
}

export interface HookOptions {
  /** The secure-context settings the server was built with besides the SVID (setSecureContext replaces them all). */
  readonly extra?: SecureContextOptions | undefined;
  /** Told about every client refused after the handshake (verification or authorizer); the socket is already destroyed. */
  readonly onRefused?: ((err: Error, socket: TLSSocket) => void) | undefined;
}

/**
 * Makes `server` an mTLS server for `source`: refuses clients the authorizer (or SPIFFE verification)
 * rejects, and follows the source's rotations. Returns a function that stops both.
 */
export function hookMTLSServer(server: Server, source: X509SourceLike, authorizer: Authorizer, opts: HookOptions = {}): () => void {
  if ((server as unknown as { requestCert?: unknown }).requestCert !== true) {
    throw new TypeError('tlsconfig: the server does not ask for client certificates; build it with mtlsServerOptions(source)');
  }
  const refresh = (): void => server.setSecureContext(serverContext(source, opts.extra));
  refresh();
  const unsubscribe = source.onUpdate(refresh);
  const check = (socket: TLSSocket): void => {
    const err = refusal(source, authorizer, peerChain(socket.getPeerCertificate(true)));
    if (!err) return;
    // Synchronously, in the same tick as the handshake's end, so no request on it is ever parsed.
    socket.destroy();
    opts.onRefused?.(err, socket);
  };
  // First, ahead of https/http2's own listener, which would start reading requests.
  server.prependListener('secureConnection', check);
  return () => {
    unsubscribe();
    server.removeListener('secureConnection', check);
  };
}

/**
 * Options for one tls.connect / https.request: presents the source's current SVID and accepts
 * only a server whose SVID verifies against the bundle of its trust domain and that the authorizer
 * accepts (the host name is not checked; the SPIFFE ID is the identity). Build them per
 * connection so a rotation is picked up, or use MTLSAgent.
 */
export function mtlsClientOptions(source: X509SourceLike, authorizer: Authorizer, extra: ConnectionOptions = {}): ConnectionOptions {
  return {
    ...extra,
    ...current(source),
    rejectUnauthorized: true,
    // node:tls hands this the detailed certificate (getPeerCertificate(true)), issuer links included.
    checkServerIdentity: (_host, cert) => refusal(source, authorizer, peerChain(cert as DetailedPeerCertificate)),
  };
}

/**
 * An https.Agent (keep-alive or not) whose every new connection presents the SVID current at that
 * moment and authorizes the server. TLS sessions are not cached, so a resumed session never skips
 * checking the server's current certificate.
 */
export class MTLSAgent extends Agent {
  readonly #source: X509SourceLike;
  readonly #authorizer: Authorizer;

  constructor(source: X509SourceLike, authorizer: Authorizer, options: AgentOptions = {}) {
    super({ ...options, maxCachedSessions: 0 });
    this.#source = source;
    this.#authorizer = authorizer;
  }

  override createConnection(options: RequestOptions, callback?: (err: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    return super.createConnection({ ...options, ...mtlsClientOptions(this.#source, this.#authorizer) } as RequestOptions, callback);
  }
}
