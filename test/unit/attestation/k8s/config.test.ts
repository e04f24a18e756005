import { describe, expect, it } from 'vitest';
import { parseK8sConfig } from '../../../../src/attestation/workload/k8s/config.js';
import { ConfigError } from '../../../../src/config/errors.js';
import { k8sPlugin } from './helpers.js';

const KEY = 'plugins.WorkloadAttestor.k8s.plugin_data';

function problems(data: Record<string, unknown>, env: Record<string, string> = {}): { key: string; message: string }[] {
  try {
    parseK8sConfig(k8sPlugin(data), env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.map((p) => ({ key: p.key, message: p.message }));
  }
  throw new Error('expected a ConfigError');
}

describe('k8s attestor config', () => {
  it('has spire-agent defaults: secure port 10250, service account CA and token, 60 × 500ms polls, 1m reload', () => {
    const c = parseK8sConfig(k8sPlugin({}), {});
    expect(c.kubelet).toEqual({
      secure: true,
      port: 10250,
      nodeName: '',
      skipKubeletVerification: false,
      kubeletCaPath: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
      auth: { kind: 'token', tokenPath: '/var/run/secrets/kubernetes.io/serviceaccount/token' },
    });
    expect(c).toMatchObject({ maxPollAttempts: 60, pollRetryIntervalMs: 500, reloadIntervalMs: 60_000, disableContainerSelectors: false, useNewContainerLocator: true });
    expect(Object.isFrozen(c) && Object.isFrozen(c.kubelet)).toBe(true);
  });

  it('takes the node name from MY_NODE_NAME, from node_name_env, and node_name over both', () => {
    expect(parseK8sConfig(k8sPlugin({}), { MY_NODE_NAME: 'n1' }).kubelet.nodeName).toBe('n1');
    expect(parseK8sConfig(k8sPlugin({ node_name_env: 'NODE' }), { MY_NODE_NAME: 'n1', NODE: 'n2' }).kubelet.nodeName).toBe('n2');
    expect(parseK8sConfig(k8sPlugin({ node_name_env: 'NODE', node_name: 'n3' }), { NODE: 'n2' }).kubelet.nodeName).toBe('n3');
  });

  it('uses the read-only port over plain HTTP when it is set', () => {
    expect(parseK8sConfig(k8sPlugin({ kubelet_read_only_port: 10255 }), {}).kubelet).toMatchObject({ secure: false, port: 10255 });
  });

  it('picks client certificate or anonymous authentication', () => {
    expect(parseK8sConfig(k8sPlugin({ certificate_path: '/c.pem', private_key_path: '/k.pem' }), {}).kubelet.auth).toEqual({
      kind: 'certificate', certificatePath: '/c.pem', privateKeyPath: '/k.pem',
    });
    expect(parseK8sConfig(k8sPlugin({ use_anonymous_authentication: true }), {}).kubelet.auth).toEqual({ kind: 'anonymous' });
  });

  it('reads poll and reload settings; zero means the default, as in spire-agent', () => {
    const c = parseK8sConfig(k8sPlugin({ max_poll_attempts: 3, poll_retry_interval: '2s', reload_interval: '30s' }), {});
    expect(c).toMatchObject({ maxPollAttempts: 3, pollRetryIntervalMs: 2000, reloadIntervalMs: 30_000 });
    expect(parseK8sConfig(k8sPlugin({ max_poll_attempts: 0, poll_retry_interval: '0s' }), {})).toMatchObject({ maxPollAttempts: 60, pollRetryIntervalMs: 500 });
  });

  it('accepts empty sigstore and experimental blocks, which ask for nothing', () => {
    expect(() => parseK8sConfig(k8sPlugin({ sigstore: [{}], experimental: {}, enable_namespace_labels: false }), {})).not.toThrow();
  });

  it.each([
    ['both ports', { kubelet_read_only_port: 10255, kubelet_secure_port: 10250 }, 'kubelet_read_only_port', /^cannot use both the read-only and secure port/],
    ['a port out of range', { kubelet_secure_port: 70000 }, 'kubelet_secure_port', /must be at most 65535/],
    ['certificate without key', { certificate_path: '/c.pem' }, 'private_key_path', /^the private key path is required with the certificate path$/],
    ['key without certificate', { private_key_path: '/k.pem' }, 'certificate_path', /^the certificate path is required with the private key path$/],
    ['disable_kubelet_client with kubelet keys', { disable_kubelet_client: true, kubelet_secure_port: 10250 }, 'kubelet_secure_port', /^disable_kubelet_client cannot be used with kubelet_secure_port$/],
    ['namespace labels', { enable_namespace_labels: true }, 'enable_namespace_labels', /need a Kubernetes API server client/],
    ['sigstore', { sigstore: [{ rekor_url: 'https://rekor.sigstore.dev' }] }, 'sigstore', /not supported by spiffe-agent/],
    ['experimental broker', { experimental: { broker: { access_policy: 'enforced' } } }, 'experimental', /need a Kubernetes API server client/],
    ['a bad poll interval', { poll_retry_interval: 'soon' }, 'poll_retry_interval', /expected a duration/],
    ['a bad reload interval', { reload_interval: 5 }, 'reload_interval', /needs a unit/],
    ['a wrong type', { skip_kubelet_verification: 'yes' }, 'skip_kubelet_verification', /expected true or false/],
    ['an unknown key', { kubelet_secure_prot: 10250 }, 'kubelet_secure_prot', /unknown key; did you mean "kubelet_secure_port"/],
  ])('names the dotted key for %s', (_name, data, key, message) => {
    expect(problems(data)).toContainEqual({ key: `${KEY}.${key}`, message: expect.stringMatching(message) });
  });

  it('reports every problem at once', () => {
    expect(problems({ kubelet_read_only_port: 1, kubelet_secure_port: 2, enable_namespace_labels: true, nope: 1 })).toHaveLength(3);
  });
});
