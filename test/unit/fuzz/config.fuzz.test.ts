/** agent.conf in JSON and HCL: any text is a config or a ConfigError; the HCL parser and the key locator never throw anything else. */
import { describe, it, expect } from 'vitest';
import { parseConfigText } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/config/errors.js';
import { HclSyntaxError, parseHcl1 } from '../../../src/config/hcl1.js';
import { locateKeys } from '../../../src/config/locate.js';
import { expandEnv } from '../../../src/config/expand-env.js';
import { fc, jsonishText, onlyTypedErrors, onlyTypedErrorsAsync, onlyTypedErrorsWithin, fuzz } from './fuzz.js';

const AGENT_KEYS = ['trust_domain', 'data_dir', 'socket_path', 'admin_socket_path', 'log_level', 'log_format', 'log_selectors', 'workload_x509_svid_key_type', 'x509_svid_cache_max_size', 'sync_interval', 'availability_target', 'server_address', 'server_port', 'trust_bundle_path', 'trust_bundle_url', 'insecure_bootstrap', 'join_token', 'experimental', 'sds', 'retry_bootstrap', 'rebootstrap_mode'];
const value = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constantFrom('example.org', '5s', '1h30m', 'DEBUG', 'ec-p256', '/tmp/x', '8081', 'never'), fc.dictionary(fc.constantFrom(...AGENT_KEYS), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }));
const agentBlock = fc.dictionary(fc.oneof(fc.constantFrom(...AGENT_KEYS), fc.string({ maxLength: 8 })), value, { maxKeys: 8 });
const pluginBody = fc.dictionary(fc.constantFrom('enabled', 'plugin_data', 'plugin_cmd', 'plugin_args', 'plugin_checksum', 'x'), fc.oneof(value, fc.dictionary(fc.string({ maxLength: 6 }), value, { maxKeys: 3 })), { maxKeys: 4 });
const plugins = fc.dictionary(fc.constantFrom('NodeAttestor', 'KeyManager', 'WorkloadAttestor', 'SVIDStore', 'Other'), fc.oneof(fc.dictionary(fc.constantFrom('unix', 'memory', 'disk', 'k8s', 'docker', 'join_token'), pluginBody, { maxKeys: 2 }), fc.array(fc.dictionary(fc.constantFrom('unix', 'memory'), pluginBody, { maxKeys: 1 }), { maxLength: 2 }), fc.jsonValue({ maxDepth: 1 })), { maxKeys: 3 });
const configDoc = fc.record({ agent: fc.oneof(agentBlock, fc.jsonValue({ maxDepth: 2 })), plugins, embedded_authority: fc.dictionary(fc.string({ maxLength: 10 }), value, { maxKeys: 3 }), health_checks: value, telemetry: value, extra: value }, { requiredKeys: [] });

/** Text that looks like HCL: tokens of the language in random order, and mutations of real configs. */
const hclToken = fc.constantFrom('agent', 'plugins', 'KeyManager', '"memory"', '"x"', '{', '}', '[', ']', '(', ')', '=', ':', ',', '\n', ' ', '"a${b}c"', '<<EOF\nx\nEOF\n', '<<-X', '# c\n', '// c\n', '/* c */', '/*', '"', '\\', '1', 'true', '${', '$X', '$$', '${Y}');
const hclText = fc.oneof(
  fc.array(hclToken, { maxLength: 60 }).map((t) => t.join('')),
  fc.string({ maxLength: 200 }),
  fc.tuple(fc.nat(120), fc.string({ maxLength: 4 })).map(([at, s]) => {
    const base = 'agent {\n  trust_domain = "example.org"\n  data_dir = "/tmp"\n}\nplugins {\n  KeyManager "memory" { plugin_data {} }\n}\n';
    return base.slice(0, at) + s + base.slice(at + 1);
  }),
);

describe('fuzz: JSON agent.conf', () => {
  it('gives a config or a ConfigError for any text', async () => {
    await fuzz(
      fc.asyncProperty(jsonishText(), async (text) => {
        await onlyTypedErrorsAsync(() => parseConfigText(text, '/etc/agent.json', { expandEnv: false, cwd: '/nonexistent' }), ConfigError);
      }),
      1500,
    );
  });

  it('gives a config or a ConfigError naming the file for any document shape', async () => {
    await fuzz(
      fc.asyncProperty(configDoc, fc.boolean(), async (doc, expand) => {
        const text = JSON.stringify(doc, null, 2);
        const c = await onlyTypedErrorsAsync(() => parseConfigText(text, '/etc/agent.json', { expandEnv: expand, env: { X: '1' }, cwd: '/nonexistent' }), ConfigError);
        if (c === undefined) {
          const err = await parseConfigText(text, '/etc/agent.json', { expandEnv: expand, env: { X: '1' }, cwd: '/nonexistent' }).catch((e: ConfigError) => e);
          expect((err as ConfigError).problems.every((p) => p.file === '/etc/agent.json' || p.message.length > 0)).toBe(true);
        } else expect(Object.isFrozen(c)).toBe(true);
      }),
      1500,
    );
  });
});

describe('fuzz: HCL agent.conf', () => {
  it('the HCL1 parser throws only HclSyntaxError, at a line of the text; the key locator and -expandEnv never throw', () => {
    fuzz(
      fc.property(hclText, (text) => {
        const lines = text.split('\n').length;
        try {
          const doc = parseHcl1(text);
          for (const l of doc.lines.values()) expect(l).toBeGreaterThanOrEqual(1), expect(l).toBeLessThanOrEqual(lines);
        } catch (err) {
          expect(err).toBeInstanceOf(HclSyntaxError);
          expect((err as HclSyntaxError).line).toBeGreaterThanOrEqual(1);
          expect((err as HclSyntaxError).line).toBeLessThanOrEqual(lines);
        }
        const loc = onlyTypedErrors(() => locateKeys(text))!;
        loc.line('agent.trust_domain');
        onlyTypedErrors(() => expandEnv(text, { X: 'y' }));
      }),
      3000,
    );
  });

  it('gives a config or a ConfigError through the real HCL parser', async () => {
    // The parser runs in-process now (it was a child process of ~0.2 s per case), so many cases.
    await fuzz(
      fc.asyncProperty(hclText, async (text) => {
        await onlyTypedErrorsWithin(20_000, () => parseConfigText(text, '/etc/agent.conf', { expandEnv: false, cwd: '/nonexistent' }), ConfigError);
      }),
      1500,
    );
  }, 120_000);
});
