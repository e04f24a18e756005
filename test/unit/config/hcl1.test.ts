/** The HCL1 subset SPIRE's agent.conf uses, read by src/config/hcl1.ts: values, shapes, key lines, errors. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { HclSyntaxError, parseHcl1 } from '../../../src/config/hcl1.js';

const SAMPLE = readFileSync(new URL('../../../conf/agent/agent.conf', import.meta.url), 'utf8');

describe('parseHcl1', () => {
  it('reads attributes of every kind', () => {
    const src = [
      'a = 1',
      'b = -2.5e1',
      'c = 0x1F',
      'd = "x\\ty\\n\\"q\\" \\\\ \\u00e9 ${not.expanded}"',
      'e = [1, "two", true, false, null,]',
      'f = { "k" = "v", m = [ { n = 1 } ] }',
      'g = <<EOT',
      'line one',
      '  line two',
      'EOT',
      'h = <<-EOT',
      '    kept',
      '      relative',
      '    EOT',
    ].join('\n');
    expect(parseHcl1(src).value).toEqual({
      a: 1,
      b: -25,
      c: 31,
      d: 'x\ty\n"q" \\ é ${not.expanded}',
      e: [1, 'two', true, false, null],
      f: { k: 'v', m: [{ n: 1 }] },
      g: 'line one\n  line two\n',
      h: 'kept\n  relative\n',
    });
  });

  it('nests blocks by type and labels, one-line and quoted forms included, repeated blocks in order', () => {
    const src = 'plugins {\n  "NodeAttestor" "join_token" { plugin_data {} }\n  WorkloadAttestor "unix" {\n    plugin_data { x = 1 }\n  }\n  WorkloadAttestor "unix" {}\n}\n';
    expect(parseHcl1(src).value).toEqual({
      plugins: [{ NodeAttestor: { join_token: [{ plugin_data: [{}] }] }, WorkloadAttestor: { unix: [{ plugin_data: [{ x: 1 }] }, {}] } }],
    });
  });

  it('knows the line of every key, block labels joined with dots', () => {
    const { lines } = parseHcl1(SAMPLE);
    const lineOf = (text: string) => SAMPLE.split('\n').findIndex((l) => l.includes(text)) + 1;
    expect(lines.get('agent')).toBe(lineOf('agent {'));
    expect(lines.get('agent.trust_domain')).toBe(lineOf('trust_domain'));
    expect(lines.get('plugins.WorkloadAttestor.unix')).toBe(lineOf('WorkloadAttestor "unix"'));
    expect(lines.get('plugins.WorkloadAttestor.unix.plugin_data.discover_workload_path')).toBe(lineOf('discover_workload_path = true'));
    expect(lines.get('embedded_authority.ca_subject.common_name')).toBe(lineOf('common_name'));
  });

  it.each([
    ['a value left out', 'agent {\n  log_level =\n}\n', 2, /^Invalid expression/],
    ['an argument set twice', 'a = 1\nb = 2\na = 3\n', 3, /^Attribute redefined; "a" was already set at line 1/],
    ['an unclosed block', 'x = 0\nagent {\n  a = 1\n', 2, /^Unclosed block; this \{ has no matching \}/],
    ['an unterminated string', 'a = "abc\nb = 1\n', 1, /^Unterminated string/],
    ['a bare word as a value', 'a = yes\n', 1, /^Invalid expression; a bare word is not a value/],
    ['a JSON document', '{"agent": {}}', 1, /^Argument or block definition required/],
    ['an unknown escape', 'a = "\\q"\n', 1, /^Invalid escape sequence/],
    ['a list without commas', 'a = [1 2]\n', 1, /^Missing comma/],
    ['an unterminated heredoc', 'x = 0\na = <<EOT\nno end\n', 2, /^Unterminated heredoc/],
    ['an unterminated comment', 'x = 0\n/* open\n', 2, /^Unterminated comment/],
  ])('refuses %s with its line', (_, src, line, message) => {
    let err: unknown;
    try {
      parseHcl1(src);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HclSyntaxError);
    expect((err as HclSyntaxError).line).toBe(line);
    expect((err as HclSyntaxError).detail).toMatch(message);
  });
});
