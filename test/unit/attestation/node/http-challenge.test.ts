/**
 * http_challenge's config (spire-agent v1.13.3's keys and defaults), its payload and challenge
 * parsing, and the warnings about what spire-server refuses. The listener itself is in
 * test/integration/http-challenge-listener.test.ts; the real server in
 * test/interop/server/http-challenge.test.ts.
 */
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { checkNodeAttestorConfig, createNodeAttestor } from '../../../../src/attestation/node/catalog.js';
import { HttpChallengeAttestor, httpChallengePayload, parseChallenge, parseHttpChallengeConfig, serverPolicyWarnings } from '../../../../src/attestation/node/http_challenge/index.js';
import { nullLogger } from '../../../../src/telemetry/logger.js';
import { parseConfigText } from '../../../../src/config/load.js';
import type { PluginConfig } from '../../../../src/config/types.js';
import { systemClock } from '../../../../src/clock.js';
import { memoryLogger } from '../../../helpers/request-path.js';
import { noTpm } from '../../../helpers/no-tpm.js';

const plugin = (data: Record<string, unknown>): PluginConfig => ({ type: 'NodeAttestor', name: 'http_challenge', enabled: true, data, dataFile: undefined, path: 'plugins.NodeAttestor.http_challenge' });
const parse = (data: Record<string, unknown>) => parseHttpChallengeConfig(plugin(data), { osHostname: () => 'node1.example.org' });
const enc = (s: string) => new TextEncoder().encode(s);

describe('http_challenge config', () => {
  it('defaults as spire-agent: the host name, agent name "default", any port, advertised port = port', () => {
    expect(parse({})).toEqual({ hostname: 'node1.example.org', agentName: 'default', port: 0, advertisedPort: 0 });
    expect(parseHttpChallengeConfig(plugin({})).hostname).toBe(hostname());
    // Empty strings mean the default, as Go's zero values do.
    expect(parse({ hostname: '', agentname: '' })).toMatchObject({ hostname: 'node1.example.org', agentName: 'default' });
    expect(parse({ port: 8080 })).toMatchObject({ port: 8080, advertisedPort: 8080 });
    expect(parse({ port: 8080, advertised_port: 80 })).toMatchObject({ port: 8080, advertisedPort: 80 });
    expect(parse({ advertised_port: 80 })).toMatchObject({ port: 0, advertisedPort: 80 });
    // HCL1 decodes a quoted number into an int field; so do we.
    expect(parse({ port: '8081', hostname: 'a.example.org', agentname: 'web1' })).toEqual({ hostname: 'a.example.org', agentName: 'web1', port: 8081, advertisedPort: 8081 });
  });

  it.each([
    [{ hostname: 'a/b' }, /plugin_data\.hostname: hostname "a\/b" can not contain a slash/],
    [{ hostname: 'a.example.org:80' }, /plugin_data\.hostname: hostname "a\.example\.org:80" can not contain a colon/],
    [{ hostname: 'a b' }, /plugin_data\.hostname: .*white space/],
    [{ agentname: 'a.b' }, /plugin_data\.agentname: agentname "a\.b" can not contain a dot/],
    [{ agentname: 'a/b' }, /plugin_data\.agentname: .*can not contain a slash/],
    [{ port: 70000 }, /plugin_data\.port: must be at most 65535, got 70000/],
    [{ port: -1 }, /plugin_data\.port: must be at least 0/],
    [{ advertised_port: 'eighty' }, /plugin_data\.advertised_port: .*integer/],
    [{ host_name: 'x' }, /plugin_data\.host_name: unknown key/],
  ])('refuses %j naming the key', (data, message) => {
    expect(() => parse(data)).toThrow(expect.objectContaining({ code: 'config_invalid', message: expect.stringMatching(message) }));
  });

  it('reports every problem at once, with file and line', async () => {
    const text = `agent {
    trust_domain = "example.org"
}
plugins {
    NodeAttestor "http_challenge" {
        plugin_data {
            hostname = "a:b"
            agentname = "x.y"
            prot = 80
        }
    }
}
`;
    const config = await parseConfigText(text, '/etc/agent.conf', { expandEnv: false });
    const p = config.plugins[0] as PluginConfig;
    const err = await checkNodeAttestorConfig(p, { file: '/etc/agent.conf', text }, systemClock).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/\/etc\/agent\.conf:7: plugins\.NodeAttestor\.http_challenge\.plugin_data\.hostname: hostname "a:b" can not contain a colon/);
    expect(err?.message).toMatch(/\/etc\/agent\.conf:8: .*agentname "x\.y" can not contain a dot/);
    expect(err?.message).toMatch(/\/etc\/agent\.conf:9: .*plugin_data\.prot: unknown key/);
  });

  it('validate refuses "localhost" (every spire-server does) and binds no port', async () => {
    await expect(checkNodeAttestorConfig(plugin({ hostname: 'localhost', port: 1 }), {}, systemClock)).rejects.toThrow(/plugin_data\.hostname: hostname "localhost" is refused by spire-server/);
    // Port 1 needs root and is surely not free to bind for everyone: validate never tries.
    await expect(checkNodeAttestorConfig(plugin({ hostname: 'n.example.org', port: 1 }), {}, systemClock)).resolves.toBeUndefined();
  });

  it('warns at start about what spire-server v1.13.3 refuses: localhost, and agent names outside its pattern', async () => {
    expect(serverPolicyWarnings(parse({ agentname: 'default' }))).toEqual([]);
    expect(serverPolicyWarnings(parse({ agentname: 'web1' }))).toEqual([]);
    for (const agentname of ['a', 'web12', 'agent-1', '1web', 'x'.repeat(33)]) {
      expect(serverPolicyWarnings(parse({ agentname })), agentname).toEqual([expect.stringMatching(/may be refused by spire-server \("agent name is not valid"\)/)]);
    }
    expect(serverPolicyWarnings(parse({ hostname: 'localhost' }))).toEqual([expect.stringMatching(/you can not use localhost as a hostname/)]);
    const log = memoryLogger();
    const att = await createNodeAttestor([plugin({ hostname: 'localhost' })], {}, { log, clock: systemClock, openTpm: noTpm });
    expect(att.name).toBe('http_challenge');
    expect(log.lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual([expect.stringMatching(/hostname "localhost" is refused/)]);
  });
});

describe('http_challenge payload and challenge', () => {
  it('the payload is spire-agent\'s JSON: hostname, agentname, port (the advertised one)', () => {
    const p = httpChallengePayload({ hostname: 'node1.example.org', agentName: 'default' }, 80);
    expect(Buffer.from(p).toString()).toBe('{"hostname":"node1.example.org","agentname":"default","port":80}');
  });

  it('reads the nonce of {"nonce": ...}, matching the key case-insensitively as Go does', () => {
    const nonce = 'q3y8m7Vh2mQ0Xo8f8bZy3mHkq1u5wYdG6pZkY1N9c2U=';
    expect(parseChallenge(enc(JSON.stringify({ nonce })))).toBe(nonce);
    expect(parseChallenge(enc(JSON.stringify({ Nonce: nonce })))).toBe(nonce);
  });

  it.each([
    ['not json', /unable to unmarshal challenge/],
    ['{}', /has no usable "nonce"/],
    ['{"nonce": 5}', /has no usable "nonce"/],
    ['{"nonce": ""}', /has no usable "nonce"/],
    [JSON.stringify({ nonce: 'a\nb' }), /has no usable "nonce"/],
    [JSON.stringify({ nonce: 'x'.repeat(65) }), /has no usable "nonce"/],
  ])('refuses the challenge %s', (text, message) => {
    expect(() => parseChallenge(enc(text))).toThrow(expect.objectContaining({ code: 'node_attestor_challenge', message: expect.stringMatching(message) }));
  });
});

describe('http_challenge refusals', () => {
  // The server's messages as spire-server v1.13.3 words them (after its "nodeattestor(http_challenge): " prefix).
  it.each([
    ['the requested hostname is not allowed to connect', /hostname "node1\.example\.org" matches none of the server's allowed_dns_patterns/],
    ['you can not use localhost as a hostname', /set hostname to a DNS name/],
    ['port 8080 is not allowed to be used by this server', /accepts only its required_port: set port/],
    ['port 8080 is not allowed to be >= 1024', /allow_non_root_ports = false/],
    ['agent name is not valid', /agentname "default" is not one the server takes/],
    ['attestation data has already been used to attest an agent', /spire-server agent evict -spiffeID <\.\.\.\/spire\/agent\/http_challenge\/node1\.example\.org>/],
    ['challenge verification failed: Get "http://node1.example.org:8080/...": dial tcp: connection refused', /could not fetch http:\/\/node1\.example\.org:8080\/\.well-known\/spiffe\/nodeattestor\/http_challenge\/default\/challenge: check that node1\.example\.org resolves/],
  ])('explains "%s"', (said, hint) => {
    const att = new HttpChallengeAttestor(parse({ port: 8080 }), { log: nullLogger });
    expect(att.explainRefusal(`nodeattestor(http_challenge): ${said}`)).toMatch(hint);
  });

  it('says nothing about other failures', () => {
    const att = new HttpChallengeAttestor(parse({}), { log: nullLogger });
    expect(att.explainRefusal('connection refused')).toBeUndefined();
  });
});
