/**
 * k8s_psat: the payload spire-agent v1.13.3 sends ({"cluster","token"} as Go's json.Marshal
 * writes it, the token file as read, untrimmed), the token read again at each attestation, the
 * errors for a missing or empty token file, and what each server refusal is explained as.
 * Compared with spire-agent's, against a real apiserver, in test/interop/kube/k8s-psat.test.ts.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NODE_ATTESTORS } from '../../../../src/attestation/node/catalog.js';
import { DEFAULT_TOKEN_PATH, K8sPsatAttestor, parseK8sPsatConfig, summarizeToken } from '../../../../src/attestation/node/k8s_psat/index.js';
import type { AttestationData, AttestationStream } from '../../../../src/attestation/node/types.js';
import type { PluginConfig } from '../../../../src/config/types.js';
import type { Logger } from '../../../../src/telemetry/logger.js';
import { FakeClock } from '../../../helpers/fake-clock.js';
import { failureOf } from '../../../helpers/failure.js';

const plugin = (data: Record<string, unknown>): PluginConfig => ({ type: 'NodeAttestor', name: 'k8s_psat', enabled: true, data, dataFile: undefined, path: 'plugins.NodeAttestor.k8s_psat' });

/** A JWT-shaped token with the claims a projected service-account token carries (unsigned: only the apiserver checks it). */
function token(claims: Record<string, unknown>): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'RS256', kid: 'k' })}.${b64(claims)}.c2ln`;
}
const claims = (over: Record<string, unknown> = {}) => ({
  aud: ['spire-server'],
  exp: Date.UTC(2026, 0, 1, 1) / 1000,
  'kubernetes.io': { namespace: 'spire', pod: { name: 'spire-agent-x', uid: 'u' }, serviceaccount: { name: 'spire-agent', uid: 's' } },
  ...over,
});

function recordingLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const rec = (obj: Record<string, unknown> | string, msg?: string) => void lines.push(JSON.stringify(obj) + (msg ?? ''));
  const log: Logger = { child: () => log, trace: rec, debug: rec, info: rec, warn: rec, error: rec };
  return { log, lines };
}

let dir: string;
let path: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'k8s-psat-'));
  path = join(dir, 'token');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const clock = new FakeClock();
const attestor = (data: Record<string, unknown> = { cluster: 'prod', token_path: path }, log: Logger = recordingLog().log) =>
  new K8sPsatAttestor(parseK8sPsatConfig(plugin(data)), { log, clock });

class OneShotStream implements AttestationStream {
  sent: AttestationData[] = [];
  constructor(private readonly challenge?: Uint8Array) {}
  sendAttestationData(d: AttestationData): Promise<Uint8Array | undefined> {
    this.sent.push(d);
    return Promise.resolve(this.challenge);
  }
  sendChallengeResponse(): Promise<Uint8Array | undefined> {
    return Promise.reject(new Error('no challenge expected'));
  }
}

describe('k8s_psat config', () => {
  it('needs cluster; token_path defaults to /var/run/secrets/tokens/spire-agent; unknown keys are refused', () => {
    expect(parseK8sPsatConfig(plugin({ cluster: 'c' }))).toEqual({ cluster: 'c', tokenPath: DEFAULT_TOKEN_PATH });
    expect(DEFAULT_TOKEN_PATH).toBe('/var/run/secrets/tokens/spire-agent');
    expect(parseK8sPsatConfig(plugin({ cluster: 'c', token_path: '' })).tokenPath).toBe(DEFAULT_TOKEN_PATH);
    expect(() => parseK8sPsatConfig(plugin({}))).toThrow(/cluster.*is required/);
    expect(() => parseK8sPsatConfig(plugin({ cluster: 'c', token_pth: '/x' }))).toThrow(/token_pth/);
    expect(NODE_ATTESTORS.names).toContain('k8s_psat');
  });
});

describe('k8s_psat payload', () => {
  it('is {"cluster","token"} in Go JSON, the file as read (newline kept, <>& escaped)', async () => {
    writeFileSync(path, 'a.b<c>&d\n');
    const stream = new OneShotStream();
    await attestor().attest(stream);
    expect(stream.sent).toHaveLength(1);
    expect(stream.sent[0]!.type).toBe('k8s_psat');
    expect(Buffer.from(stream.sent[0]!.payload).toString()).toBe('{"cluster":"prod","token":"a.b\\u003cc\\u003e\\u0026d\\n"}');
  });

  it('reads the token again at each attestation (the kubelet rotates it)', async () => {
    const a = attestor();
    writeFileSync(path, 'first');
    const one = Buffer.from(await a.payload()).toString();
    writeFileSync(path, 'second');
    const two = Buffer.from(await a.payload()).toString();
    expect([one, two]).toEqual(['{"cluster":"prod","token":"first"}', '{"cluster":"prod","token":"second"}']);
  });

  it('never logs the token; logs who it names', async () => {
    const t = token(claims());
    writeFileSync(path, t);
    const { log, lines } = recordingLog();
    await attestor(undefined, log).payload();
    const all = lines.join('\n');
    expect(all).not.toContain(t.split('.')[1]!);
    expect(all).not.toContain(t.split('.')[2]!);
    expect(all).toContain('spire-agent-x');
    expect(all).toContain('"namespace":"spire"');
  });

  it('a server challenge is refused', async () => {
    writeFileSync(path, 't');
    const err = await failureOf(attestor().attest(new OneShotStream(new Uint8Array([1]))));
    expect({ code: err.code, message: err.message }).toEqual({ code: 'node_attestor_unexpected_challenge', message: 'nodeattestor(k8s_psat): server sent a challenge; k8s_psat expects none' });
  });
});

describe('k8s_psat token file errors', () => {
  it('a missing file: names the path and says what to mount', async () => {
    const err = await failureOf(attestor().payload());
    expect(err.code).toBe('node_attestor_io');
    expect(err.message).toContain(`nodeattestor(k8s_psat): unable to load token from ${path}: `);
    expect(err.message).toContain('does not exist');
    expect(err.message).toContain('serviceAccountToken volume with audience "spire-server"');
  });

  it('an empty file, a directory: refused, naming the path', async () => {
    writeFileSync(path, '');
    const empty = await failureOf(attestor().payload());
    expect({ code: empty.code, message: empty.message }).toEqual({
      code: 'node_attestor_io',
      message: `nodeattestor(k8s_psat): unable to load token from ${path}: the file is empty; the kubelet writes the projected token there, so check the pod's serviceAccountToken volume`,
    });
    rmSync(path);
    mkdirSync(path);
    const d = await failureOf(attestor().payload());
    expect(d.code).toBe('node_attestor_io');
    expect(d.message).toMatch(new RegExp(`unable to load token from ${path}: .*is a directory`));
  });
});

describe('k8s_psat refusals', () => {
  const notAuth = 'rpc error: code = PermissionDenied desc = nodeattestor(k8s_psat): token not authenticated according to TokenReview API';
  async function sent(c: Record<string, unknown>): Promise<K8sPsatAttestor> {
    writeFileSync(path, token(c));
    const a = attestor();
    await a.payload();
    return a;
  }

  it('not authenticated: an expired token says when it expired', async () => {
    const a = await sent(claims({ exp: clock.now() / 1000 - 60 }));
    expect(a.explainRefusal(notAuth)).toBe(`the token in ${path} expired at ${new Date(clock.now() - 60_000).toISOString()}: use the kubelet-rotated projected token (a serviceAccountToken volume), not a copy`);
  });

  it('not authenticated: another audience is named', async () => {
    const a = await sent(claims({ aud: ['vault'], exp: clock.now() / 1000 + 600 }));
    expect(a.explainRefusal(notAuth)).toMatch(/^the token's audience is \["vault"\]; the server expects "spire-server"/);
  });

  it('the apiserver\'s own reasons (TokenReview failed) are explained too', async () => {
    const a = await sent(claims({ exp: clock.now() / 1000 - 5 }));
    const said = 'nodeattestor(k8s_psat): unable to validate token with TokenReview API: token review API response contains an error: [invalid bearer token, service account token has expired]';
    expect(a.explainRefusal(said)).toMatch(/^the token in \S+ expired at /);
    expect(attestor().explainRefusal(said)).toBe(`the token in ${path} has expired: use the kubelet-rotated projected token (a serviceAccountToken volume), not a copy`);
  });

  it('not authenticated otherwise, unknown cluster, service account not allowed', async () => {
    const a = await sent(claims({ exp: clock.now() / 1000 + 600 }));
    expect(a.explainRefusal(notAuth)).toMatch(/does not accept the token: it expired, its audience/);
    expect(a.explainRefusal('not configured for cluster "prod"')).toBe('the server\'s k8s_psat has no cluster "prod": set cluster to a name under its clusters = { ... }, or add this cluster there');
    expect(a.explainRefusal('"spire:spire-agent" is not an allowed service account')).toMatch(/^add "spire:spire-agent" to service_account_allow_list of cluster "prod"/);
    expect(a.explainRefusal('something else')).toBeUndefined();
  });

  it('summarizeToken reads the claims of a JWT and nothing of anything else', () => {
    expect(summarizeToken(token(claims()))).toEqual({ namespace: 'spire', serviceAccount: 'spire-agent', podName: 'spire-agent-x', audience: ['spire-server'], exp: Date.UTC(2026, 0, 1, 1) / 1000 });
    expect(summarizeToken('not a jwt')).toBeUndefined();
  });
});
