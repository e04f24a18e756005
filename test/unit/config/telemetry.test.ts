import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../../src/config/load.js';

const MIN = 'agent {\n  trust_domain = "example.org"\n}\n';
const parse = (telemetry: string) => parseConfigText(`${MIN}telemetry {\n${telemetry}\n}\n`, 'a.conf', { expandEnv: false });

describe('telemetry {}', () => {
  it('is off without the block, with spire-agent defaults', async () => {
    const c = await parseConfigText(MIN, 'a.conf', { expandEnv: false });
    expect(c.telemetry).toEqual({ metricPrefix: 'spire_agent', enableHostnameLabel: true, allowedPrefixes: [], blockedPrefixes: [] });
  });

  it('reads Prometheus host and port, host defaulting to localhost as spire-agent does', async () => {
    expect((await parse('  Prometheus {\n    port = 9988\n  }')).telemetry.prometheus).toEqual({ host: 'localhost', port: 9988 });
    expect((await parse('  Prometheus {\n    host = "0.0.0.0"\n    port = "9988"\n  }')).telemetry.prometheus).toEqual({ host: '0.0.0.0', port: 9988 });
  });

  it('matches key names case-insensitively, as spire-agent\'s HCL decoder does', async () => {
    const c = await parse('  prometheus {\n    port = 9988\n  }\n  metricprefix = "node"\n  enableHostnameLabel = false');
    expect(c.telemetry).toMatchObject({ prometheus: { host: 'localhost', port: 9988 }, metricPrefix: 'node', enableHostnameLabel: false });
  });

  it('reads the go-metrics prefix filters', async () => {
    const c = await parse('  Prometheus { port = 1 }\n  AllowedPrefixes = ["spire_agent.rpc"]\n  BlockedPrefixes = ["spire_agent.rpc.health"]');
    expect(c.telemetry).toMatchObject({ allowedPrefixes: ['spire_agent.rpc'], blockedPrefixes: ['spire_agent.rpc.health'] });
  });

  it.each([
    ['  Statsd = [{ address = "localhost:8125" }]', /a\.conf:5: telemetry\.Statsd: the Statsd sink is not supported by spiffe-agent/],
    ['  DogStatsd = [{ address = "localhost:8125" }]', /telemetry\.DogStatsd: the DogStatsd sink is not supported/],
    ['  M3 = [{ address = "localhost:9052", env = "prod" }]', /telemetry\.M3: the M3 sink is not supported/],
    ['  InMem {}', /telemetry\.InMem: the InMem sink .* is not supported/],
    ['  AllowedLabels = ["status"]', /telemetry\.AllowedLabels: label filtering is not supported/],
    ['  BlockedLabels = ["status"]', /telemetry\.BlockedLabels: label filtering is not supported/],
    ['  EnableTrustDomainLabel = true', /telemetry\.EnableTrustDomainLabel: the trust_domain label is not supported/],
    ['  Prometheus {}', /telemetry\.Prometheus\.port: missing: set the port/],
    ['  Prometheus { port = 70000 }', /telemetry\.Prometheus\.port/],
    ['  Prometheus {\n    port = 1\n    path = "/m"\n  }', /telemetry\.Prometheus\.path: unknown key/],
    ['  Bogus = 1', /telemetry\.Bogus: unknown key/],
    ['  Prometheus { port = 1 }\n  Prometheus { port = 2 }', /telemetry\.Prometheus: declared 2 times/],
    ['  Prometheus {\n    port = 1\n    Port = 2\n  }', /telemetry\.Prometheus\.port: set twice/],
  ])('refuses %j with file, line and reason', async (body, want) => {
    await expect(parse(body)).rejects.toThrow(want);
  });

  it('accepts EnableTrustDomainLabel = false (the default)', async () => {
    await expect(parse('  EnableTrustDomainLabel = false')).resolves.toBeDefined();
  });
});
