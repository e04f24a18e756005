import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { PluginConfig } from '../../../../src/config/types.js';

export const FIXTURES = fileURLToPath(new URL('../../../fixtures/k8s/', import.meta.url));

/** The fixture pods (Kubernetes Pod objects as the kubelet's /pods lists them), fresh copies. */
export function fixturePods(): Record<string, any>[] {
  return JSON.parse(readFileSync(`${FIXTURES}pods.json`, 'utf8')) as Record<string, any>[];
}

export const POD1 = '7c1f3c5e-9a43-4b8e-8f6a-2d1e5b9c0a11';
export const POD2 = 'e3b0c442-98fc-4c14-9afb-f4c8996fb924';
export const POD3 = '5d41402a-bc4b-4a76-b971-9d911017c592';
export const C_API = '4f1c9e2d7b3a5c8e6f0d1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d';
export const C_INIT = '0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9';
export const C_OTHER = 'c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00';

/** Pids of test/fixtures/k8s/pod-workload/<pid>/cgroup. */
export const PID = { api: 4242, envoy: 4343, init: 4444, other: 4545, starting: 4646, crioNoPod: 4747 } as const;

export function k8sPlugin(data: Record<string, unknown>): PluginConfig {
  return { type: 'WorkloadAttestor', name: 'k8s', enabled: true, data, dataFile: undefined, path: 'plugins.WorkloadAttestor.k8s' };
}

/** Selector values of pod 1 (payments-api) common to all its containers. */
export const POD1_SELECTORS = [
  'ns:payments',
  'node-name:k8s-node-1',
  'pod-image-count:2',
  'pod-image:docker.io/envoyproxy/envoy:v1.30.1',
  'pod-image:docker.io/envoyproxy/envoy@sha256:0f2e4c6a8b0d2f4e6a8c0b2d4f6e8a0c2b4d6f8e0a2c4b6d8f0e2a4c6b8d0f2e',
  'pod-image:registry.example.com/payments/api:1.4.2',
  'pod-image:registry.example.com/payments/api@sha256:ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12',
  'pod-init-image-count:1',
  'pod-init-image:registry.example.com/payments/migrate:1.4.2',
  'pod-init-image:registry.example.com/payments/migrate@sha256:5e8a1bd3c1f0a8e0c2b7f0d4a9e6c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6',
  'pod-label:app.kubernetes.io/name:payments-api',
  'pod-label:pod-template-hash:6d9f7c8b5',
  'pod-label:tier:backend',
  'pod-name:payments-api-6d9f7c8b5-x2x7q',
  'pod-owner-uid:Canary:aa11bb22-cc33-4d44-8e55-ff6677889900',
  'pod-owner-uid:ReplicaSet:1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9',
  'pod-owner:Canary:payments-api-canary',
  'pod-owner:ReplicaSet:payments-api-6d9f7c8b5',
  `pod-uid:${POD1}`,
  'sa:payments-api',
];

export const API_CONTAINER_SELECTORS = [
  'container-image:registry.example.com/payments/api:1.4.2',
  'container-image:registry.example.com/payments/api@sha256:ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12',
  'container-name:api',
];

export const sorted = (xs: readonly string[]): string[] => [...xs].sort();
