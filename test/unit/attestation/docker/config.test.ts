import { describe, expect, it } from 'vitest';
import { compileMatchers, containerIdFromMatchers, validateMatchers } from '../../../../src/attestation/workload/docker/cgroup-matchers.js';
import { formatTemplate, parseDockerConfig } from '../../../../src/attestation/workload/docker/config.js';
import { ConfigError } from '../../../../src/config/errors.js';
import { dockerPlugin } from './helpers.js';

const KEY = 'plugins.WorkloadAttestor.docker.plugin_data';

function problems(data: Record<string, unknown>): string[] {
  try {
    parseDockerConfig(dockerPlugin(data));
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.map((p) => `${p.key}: ${p.message}`);
  }
  return [];
}

describe('docker plugin_data', () => {
  it("has spire-agent's defaults", () => {
    expect(parseDockerConfig(dockerPlugin())).toEqual({
      dockerSocketPath: '/var/run/docker.sock',
      dockerVersion: undefined,
      podmanSocketPath: '/run/podman/podman.sock',
      podmanSocketPathTemplate: 'unix:///run/user/%d/podman/podman.sock',
      containerIdCgroupMatchers: [],
      verboseContainerLocatorLogs: false,
    });
  });

  it('reads every key', () => {
    const cfg = parseDockerConfig(
      dockerPlugin({
        docker_socket_path: 'unix:///socket_path',
        docker_version: '1.20',
        podman_socket_path: 'unix:///custom/podman.sock',
        podman_socket_path_template: 'unix:///var/run/user/%d/podman.sock',
        use_new_container_locator: false,
        container_id_cgroup_matchers: ['/docker/<id>'],
        verbose_container_locator_logs: true,
      }),
    );
    expect(cfg).toMatchObject({
      dockerSocketPath: '/socket_path',
      dockerVersion: '1.20',
      podmanSocketPath: '/custom/podman.sock',
      podmanSocketPathTemplate: 'unix:///var/run/user/%d/podman.sock',
      containerIdCgroupMatchers: ['/docker/<id>'],
      verboseContainerLocatorLogs: true,
    });
    expect(Object.isFrozen(cfg)).toBe(true);
  });

  it.each([
    ['an unknown key', { docker_sock: 'x' }, `${KEY}.docker_sock`],
    ['matchers with the new locator left on', { container_id_cgroup_matchers: ['/docker/<id>'] }, 'the new container locator and custom cgroup matchers cannot both be used'],
    ['a matcher without <id>', { use_new_container_locator: false, container_id_cgroup_matchers: ['/docker/'] }, 'must contain the container id token "<id>" exactly once'],
    ['ambiguous matchers', { use_new_container_locator: false, container_id_cgroup_matchers: ['/a/b/<id>', '/*/b/<id>'] }, 'patterns must not be ambiguous'],
    ['a template without %d', { podman_socket_path_template: 'unix:///run/podman.sock' }, 'exactly one %d UID placeholder'],
    ['a template with %s', { podman_socket_path_template: 'unix:///run/%s/%d.sock' }, 'only supports escaped %% or the %d UID placeholder'],
    ['a trailing %', { podman_socket_path_template: 'unix:///run/%d%' }, 'trailing % at end of template'],
    ['a tcp docker host', { docker_socket_path: 'tcp://127.0.0.1:2375' }, 'only Unix sockets are supported'],
    ['a relative unix path', { podman_socket_path: 'unix://run/podman.sock' }, 'only Unix sockets are supported'],
    ['a bad API version', { docker_version: 'latest' }, 'expected an Engine API version like "1.43"'],
    ['a sigstore block', { sigstore: { ignore_tlog: true } }, 'sigstore) is not supported'],
    ['a non-boolean', { verbose_container_locator_logs: 'yes' }, `${KEY}.verbose_container_locator_logs`],
  ])('rejects %s', (_name, data, want) => {
    expect(problems(data).join('\n')).toContain(want);
  });

  it('reports every problem at once', () => {
    expect(problems({ docker_socket_path: 'tcp://x', docker_version: 'x', bogus: 1 })).toHaveLength(3);
  });

  it('accepts an explicit empty string as the default, as spire-agent does', () => {
    expect(parseDockerConfig(dockerPlugin({ docker_socket_path: '', podman_socket_path_template: '' }))).toMatchObject({
      dockerSocketPath: '/var/run/docker.sock',
      podmanSocketPathTemplate: 'unix:///run/user/%d/podman/podman.sock',
    });
  });

  it('formats the rootless template like Go Sprintf', () => {
    expect(formatTemplate('unix:///run/user/%d/podman/podman.sock', 1000)).toBe('unix:///run/user/1000/podman/podman.sock');
    expect(formatTemplate('unix:///x/%%/%d', 7)).toBe('unix:///x/%/7');
  });
});

describe('container_id_cgroup_matchers', () => {
  it.each([
    ['/docker/<id>', '/docker/foo', 'foo'],
    ['/docker/<id>', '/docker/', ''],
    ['/long.slice/*/*/<id>/*', '/long.slice/foo/bar/baz/qux', 'baz'],
    ['/long.slice/*/*/<id>/*', '/long.slice/foo/bar/baz/', 'baz'],
    ['/long.slice/*/*/<id>/*', '/long.slice/foo/bar//qux', ''],
  ])('%s finds %j in %s', (pattern, path, id) => {
    expect(compileMatchers([pattern]).find(path)).toBe(id);
  });

  it.each([
    ['/docker/<id>', ['', '/', '/docker', '/dockerfoo', '/docker/foo/', '/docker/foo/bar', '/docker/foo/docker/foo']],
    ['/long.slice/*/*/<id>/*', ['/long.slice/foo/bar', '/long.slicefoo', '/long.slice/foo/bar/baz', '/long.slice/foo/bar/baz/qux/qax']],
    // '.' is literal, not a regex wildcard
    ['/my.slice/<id>', ['/myxslice/abc']],
  ])('%s matches none of the near misses', (pattern, paths) => {
    const m = compileMatchers([pattern]);
    for (const p of paths) expect(m.find(p)).toBeUndefined();
  });

  it('takes the first pattern that matches when several are given', () => {
    const m = compileMatchers(['/docker/*/<id>', '/docker/<id>']);
    expect(m.find('/docker/abc')).toBe('abc');
    expect(m.find('/docker/x/def')).toBe('def');
  });

  it.each([
    [[], 'at least 1 pattern must be supplied'],
    [['/noid'], 'pattern "/noid" must contain the container id token "<id>" exactly once'],
    [['/<id>/<id>'], 'exactly once'],
    [['/docker/<id>', '/docker/<id>'], 'patterns must not be ambiguous'],
    [['/docker/<id>', '/*/<id>', '/a/b/*/d/<id>', '/<id>/*/*/*/*'], 'patterns must not be ambiguous'],
  ])('rejects %j', (patterns, want) => {
    expect(validateMatchers(patterns).join('\n')).toContain(want);
    expect(() => compileMatchers(patterns)).toThrow(want);
  });

  it('accepts patterns of different depth or with a differing literal', () => {
    expect(validateMatchers(['/docker/<id>', '/docker/*/<id>', '/crio/<id>'])).toEqual([]);
  });

  it('reads a whole cgroup file: none matched ⇒ undefined, consistent ids ⇒ the id', () => {
    const m = compileMatchers(['/docker/<id>']);
    expect(containerIdFromMatchers(m, '1:cpu:/\n0::/init.scope\n')).toBeUndefined();
    expect(containerIdFromMatchers(m, '2:cpu:/docker/abc\n1:memory:/docker/abc\n0::/\n')).toBe('abc');
  });
});
