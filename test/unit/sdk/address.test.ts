import { describe, expect, it } from 'vitest';
import { AddressError, parseAddress, resolveAddress, validateAddress } from '../../../src/sdk/index.js';

describe('Workload API addresses', () => {
  // The bad cases and their texts are go-spiffe's (workloadapi/addr_test.go, addr_posix_test.go).
  const bad: Array<{ addr: string; message: string }> = [
    { addr: '\t', message: 'workload endpoint socket is not a valid URI: net/url: invalid control character in URL' },
    { addr: 'blah', message: 'workload endpoint socket URI must have a tcp:// or unix:// scheme' },
    { addr: 'unix:opaque', message: 'workload endpoint unix socket URI must not be opaque' },
    { addr: 'unix://', message: 'workload endpoint unix socket URI must include a path' },
    { addr: 'unix://foo?whatever', message: 'workload endpoint unix socket URI must not include query values' },
    { addr: 'unix://foo#whatever', message: 'workload endpoint unix socket URI must not include a fragment' },
    { addr: 'unix://john:doe@foo/path', message: 'workload endpoint unix socket URI must not include user info' },
    { addr: 'tcp:opaque', message: 'workload endpoint tcp socket URI must not be opaque' },
    { addr: 'tcp://', message: 'workload endpoint tcp socket URI must include a host' },
    { addr: 'tcp://1.2.3.4:5?whatever', message: 'workload endpoint tcp socket URI must not include query values' },
    { addr: 'tcp://1.2.3.4:5#whatever', message: 'workload endpoint tcp socket URI must not include a fragment' },
    { addr: 'tcp://john:doe@1.2.3.4:5/path', message: 'workload endpoint tcp socket URI must not include user info' },
    { addr: 'tcp://1.2.3.4:5/path', message: 'workload endpoint tcp socket URI must not include a path' },
    { addr: 'tcp://foo', message: 'workload endpoint tcp socket URI host component must be an IP:port' },
    { addr: 'tcp://localhost:8080', message: 'workload endpoint tcp socket URI host component must be an IP:port' },
    { addr: 'tcp://1.2.3.4', message: 'workload endpoint tcp socket URI host component must include a port' },
    { addr: 'http://1.2.3.4:5', message: 'workload endpoint socket URI must have a tcp:// or unix:// scheme' },
    { addr: 'relative/path.sock', message: 'workload endpoint socket URI must have a tcp:// or unix:// scheme' },
  ];
  it.each(bad)('rejects $addr with go-spiffe’s message', ({ addr, message }) => {
    const err = validateAddress(addr);
    expect(err).toBeInstanceOf(AddressError);
    expect({ code: err?.code, message: err?.message }).toEqual({ code: 'workloadapi_address', message: `workloadapi: ${message}` });
  });

  const good: Array<{ addr: string; want: object }> = [
    { addr: 'unix:///tmp/agent.sock', want: { kind: 'unix', path: '/tmp/agent.sock', target: 'unix:///tmp/agent.sock' } },
    { addr: 'UNIX:///tmp/agent.sock', want: { kind: 'unix', path: '/tmp/agent.sock' } },
    { addr: 'unix:/tmp/agent.sock', want: { kind: 'unix', path: '/tmp/agent.sock' } },
    { addr: 'unix://foo', want: { kind: 'unix', path: 'foo', target: 'unix:foo' } },
    { addr: '/run/spire/sockets/agent.sock', want: { kind: 'unix', path: '/run/spire/sockets/agent.sock' } },
    { addr: 'tcp://1.2.3.4:5', want: { kind: 'tcp', host: '1.2.3.4', port: 5, target: 'ipv4:1.2.3.4:5' } },
    { addr: 'tcp://[::1]:8081', want: { kind: 'tcp', host: '::1', port: 8081, target: 'ipv6:[::1]:8081' } },
  ];
  it.each(good)('accepts $addr', ({ addr, want }) => {
    expect(parseAddress(addr)).toMatchObject(want);
  });

  it('prefers the explicit address over SPIFFE_ENDPOINT_SOCKET', () => {
    const env = { SPIFFE_ENDPOINT_SOCKET: 'unix:///from/env.sock' };
    expect(resolveAddress({ address: 'unix:///explicit.sock', env }).target).toBe('unix:///explicit.sock');
    expect(resolveAddress({ env }).target).toBe('unix:///from/env.sock');
  });

  it('fails with a hint when neither the option nor SPIFFE_ENDPOINT_SOCKET is set', () => {
    expect(() => resolveAddress({ env: {} })).toThrow(/SPIFFE_ENDPOINT_SOCKET/);
  });

  it('reports a bad SPIFFE_ENDPOINT_SOCKET with the parse error', () => {
    expect(() => resolveAddress({ env: { SPIFFE_ENDPOINT_SOCKET: 'tcp://foo' } })).toThrow('must be an IP:port');
  });
});
