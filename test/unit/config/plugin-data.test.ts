import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/config/errors.js';
import { PluginDataReader } from '../../../src/config/plugin-data.js';
import type { PluginConfig } from '../../../src/config/types.js';

const plugin = (data: Record<string, unknown>, dataFile?: string): PluginConfig => ({
  type: 'WorkloadAttestor',
  name: 'unix',
  enabled: true,
  data,
  dataFile,
  path: 'plugins.WorkloadAttestor.unix',
});

const P = 'plugins.WorkloadAttestor.unix.plugin_data';

describe('PluginDataReader', () => {
  it('returns typed values and defaults for absent keys', () => {
    const r = new PluginDataReader(plugin({ b: true, n: 7, s: 'x', d: '90s', l: ['a', 'b'] }));
    expect([r.bool('b', false), r.int('n', 0), r.string('s', ''), r.duration('d', '1s'), r.stringList('l', [])]).toEqual([true, 7, 'x', 90_000, ['a', 'b']]);
    expect([r.bool('nb', true), r.int('nn', 3), r.optionalString('ns'), r.duration('nd', '5m'), r.stringList('nl', ['z'])]).toEqual([
      true,
      3,
      undefined,
      300_000,
      ['z'],
    ]);
    expect(() => r.finish()).not.toThrow();
  });

  it('collects every problem, unknown keys included, under dotted paths', () => {
    const r = new PluginDataReader(plugin({ discover_workload_path: 'yes', workload_size_limit: 1.5, extra: 1 }), { file: '/etc/agent.conf' });
    r.bool('discover_workload_path', false);
    r.int('workload_size_limit', 0);
    let err: unknown;
    try {
      r.finish();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect({ code: (err as ConfigError).code, problems: (err as ConfigError).problems }).toEqual({
      code: 'config_invalid',
      problems: [
        { file: '/etc/agent.conf', key: `${P}.discover_workload_path`, message: 'expected true or false, got "yes"' },
        { file: '/etc/agent.conf', key: `${P}.workload_size_limit`, message: 'expected an integer, got the number 1.5' },
        { file: '/etc/agent.conf', key: `${P}.extra`, message: 'unknown key (check the spelling, or remove it)' },
      ],
    });
  });

  it('puts line numbers on problems when given the config text', () => {
    const text = 'plugins {\n  WorkloadAttestor "unix" {\n    plugin_data {\n      workload_size_limit = "big"\n    }\n  }\n}\n';
    const r = new PluginDataReader(plugin({ workload_size_limit: 'big' }), { file: 'a.conf', text });
    r.int('workload_size_limit', 0);
    expect(() => r.finish()).toThrow(`a.conf:4: ${P}.workload_size_limit: expected an integer, got "big"`);
  });

  it('names the plugin_data_file when the data came from one', () => {
    const r = new PluginDataReader(plugin({ x: 1 }, '/etc/unix.hcl'), { file: '/etc/agent.conf' });
    expect(() => r.finish()).toThrow(`/etc/unix.hcl: ${P}.x: unknown key`);
  });

  it('accepts unknown keys with allowUnknown', () => {
    const r = new PluginDataReader(plugin({ anything: 1 }), { allowUnknown: true });
    expect(() => r.finish()).not.toThrow();
  });

  it.each([
    { read: (r: PluginDataReader) => r.duration('d', '1s'), data: { d: 'soon' }, message: 'expected a duration like "5s", got "soon"' },
    { read: (r: PluginDataReader) => r.stringList('d'), data: { d: 'a' }, message: 'expected a list of strings like ["a", "b"], got "a"' },
    { read: (r: PluginDataReader) => r.string('d', ''), data: { d: true }, message: 'expected a string, got the boolean true' },
    { read: (r: PluginDataReader) => r.int('d', 0, { min: 1 }), data: { d: 0 }, message: 'must be at least 1, got 0' },
  ])('rejects a wrong value: $message', ({ read, data, message }) => {
    const r = new PluginDataReader(plugin(data));
    read(r);
    expect(() => r.finish()).toThrow(`${P}.d: ${message}`);
  });

  it('records plugin-specific problems', () => {
    const r = new PluginDataReader(plugin({}));
    r.problem('a', 'a and b exclude each other');
    expect(() => r.finish()).toThrow(`${P}.a: a and b exclude each other`);
  });
});
