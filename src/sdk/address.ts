/**
 * Workload API endpoint addresses, with go-spiffe's rules (workloadapi/addr.go,
 * addr_posix.go) and its error texts, so a bad SPIFFE_ENDPOINT_SOCKET reads the
 * same whichever SDK rejects it. Go's net/url is emulated by hand because the
 * WHATWG URL parser disagrees with it on opaque and schemeless forms.
 */
import { isIP } from 'node:net';
import { AddressError } from './errors.js';

export const SOCKET_ENV = 'SPIFFE_ENDPOINT_SOCKET';

export type WorkloadAddress =
  | { readonly kind: 'unix'; readonly path: string; readonly target: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number; readonly target: string };

interface GoURL {
  scheme: string;
  opaque: string;
  hasUser: boolean;
  host: string;
  path: string;
  rawQuery: string;
  fragment: string;
}

function parseGoURL(addr: string): GoURL {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(addr)) {
    throw new AddressError('workload endpoint socket is not a valid URI: net/url: invalid control character in URL');
  }
  let rest = addr;
  let fragment = '';
  const hash = rest.indexOf('#');
  if (hash >= 0) {
    fragment = rest.slice(hash + 1);
    rest = rest.slice(0, hash);
  }
  let scheme = '';
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(rest);
  if (m) {
    scheme = m[1]!.toLowerCase();
    rest = rest.slice(m[0].length);
  }
  let rawQuery = '';
  const q = rest.indexOf('?');
  if (q >= 0) {
    rawQuery = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  const url: GoURL = { scheme, opaque: '', hasUser: false, host: '', path: '', rawQuery, fragment };
  if (scheme !== '' && rest !== '' && !rest.startsWith('/')) {
    url.opaque = rest;
    return url;
  }
  if (scheme !== '' && rest.startsWith('//')) {
    const afterSlashes = rest.slice(2);
    const slash = afterSlashes.indexOf('/');
    let authority = slash >= 0 ? afterSlashes.slice(0, slash) : afterSlashes;
    rest = slash >= 0 ? afterSlashes.slice(slash) : '';
    const at = authority.lastIndexOf('@');
    if (at >= 0) {
      url.hasUser = true;
      authority = authority.slice(at + 1);
    }
    url.host = authority;
  }
  try {
    url.path = decodeURIComponent(rest);
  } catch {
    throw new AddressError(`workload endpoint socket is not a valid URI: invalid URL escape in ${JSON.stringify(rest)}`);
  }
  return url;
}

function splitHostPort(host: string): { hostname: string; port: string } {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    const hostname = end >= 0 ? host.slice(1, end) : host.slice(1);
    const after = end >= 0 ? host.slice(end + 1) : '';
    return { hostname, port: after.startsWith(':') ? after.slice(1) : '' };
  }
  const colon = host.lastIndexOf(':');
  return colon >= 0 ? { hostname: host.slice(0, colon), port: host.slice(colon + 1) } : { hostname: host, port: '' };
}

/**
 * Parses `unix:///abs/path`, `tcp://IP:port`, or a bare absolute path (what
 * spire-agent's `-socketPath` flag takes). Throws AddressError with go-spiffe's text.
 */
export function parseAddress(addr: string): WorkloadAddress {
  if (addr.startsWith('/')) {
    // eslint-disable-next-line no-control-regex
    if (/[\x00]/.test(addr)) throw new AddressError('workload endpoint socket path must not contain NUL');
    return { kind: 'unix', path: addr, target: `unix://${addr}` };
  }
  const u = parseGoURL(addr);
  switch (u.scheme) {
    case 'unix': {
      if (u.opaque !== '') throw new AddressError('workload endpoint unix socket URI must not be opaque');
      if (u.hasUser) throw new AddressError('workload endpoint unix socket URI must not include user info');
      if (u.host === '' && u.path === '') throw new AddressError('workload endpoint unix socket URI must include a path');
      if (u.rawQuery !== '') throw new AddressError('workload endpoint unix socket URI must not include query values');
      if (u.fragment !== '') throw new AddressError('workload endpoint unix socket URI must not include a fragment');
      // go-spiffe lets `unix://foo` through (host "foo"); treat host+path as the socket path.
      const path = u.host + u.path;
      return { kind: 'unix', path, target: path.startsWith('/') ? `unix://${path}` : `unix:${path}` };
    }
    case 'tcp': {
      if (u.opaque !== '') throw new AddressError('workload endpoint tcp socket URI must not be opaque');
      if (u.hasUser) throw new AddressError('workload endpoint tcp socket URI must not include user info');
      if (u.host === '') throw new AddressError('workload endpoint tcp socket URI must include a host');
      if (u.path !== '') throw new AddressError('workload endpoint tcp socket URI must not include a path');
      if (u.rawQuery !== '') throw new AddressError('workload endpoint tcp socket URI must not include query values');
      if (u.fragment !== '') throw new AddressError('workload endpoint tcp socket URI must not include a fragment');
      const { hostname, port } = splitHostPort(u.host);
      const family = isIP(hostname);
      if (family === 0) throw new AddressError('workload endpoint tcp socket URI host component must be an IP:port');
      if (port === '') throw new AddressError('workload endpoint tcp socket URI host component must include a port');
      if (!/^\d+$/.test(port) || Number(port) > 65535) {
        throw new AddressError(`workload endpoint socket is not a valid URI: invalid port ":${port}" after host`);
      }
      const target = family === 6 ? `ipv6:[${hostname}]:${port}` : `ipv4:${hostname}:${port}`;
      return { kind: 'tcp', host: hostname, port: Number(port), target };
    }
    default:
      throw new AddressError('workload endpoint socket URI must have a tcp:// or unix:// scheme');
  }
}

/** Returns undefined when the address is valid, else the AddressError. */
export function validateAddress(addr: string): AddressError | undefined {
  try {
    parseAddress(addr);
    return undefined;
  } catch (err) {
    if (err instanceof AddressError) return err;
    throw err;
  }
}

/** The explicit address wins; then SPIFFE_ENDPOINT_SOCKET from the env object given. */
export function resolveAddress(opts: { address?: string | undefined; env?: Readonly<Record<string, string | undefined>> | undefined }): WorkloadAddress {
  if (opts.address !== undefined && opts.address !== '') return parseAddress(opts.address);
  const fromEnv = opts.env?.[SOCKET_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return parseAddress(fromEnv);
  throw new AddressError(`workload endpoint socket address is not configured: pass the address option or set ${SOCKET_ENV}`);
}
