/**
 * Real peer: java-spiffe 0.8.17 (io.spiffe:java-spiffe-core + grpc-netty-linux, pinned in java-client/pom.xml),
 * shaded by setup-java.sh into one jar and run with a JDK as distinct Unix uids against the compiled daemon.
 * java-spiffe verifies what it gets with its own code: X509SvidValidator.verifyChain, JwtSvid.parseAndValidate,
 * and the DefaultX509Source / DefaultJwtSource streams Java services build their TLS and JWT checks on.
 */
import { existsSync, readFileSync } from 'node:fs';
import { chmod, copyFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AgentUnderTest,
  REPO,
  TD,
  UID_A,
  UID_B,
  UID_NONE,
  assertPrerequisites,
  explain,
  runAs,
  spawnAs,
  uidEntry,
  type RunResult,
} from './harness.js';

const JAVA_CACHE = path.join(REPO, 'test/interop/.cache/java');
const JAR_BUILT = path.join(JAVA_CACHE, 'java-client.jar');
const JAVA_PATH_FILE = path.join(JAVA_CACHE, 'java-path');

const ID_A = `spiffe://${TD}/a`;
const ID_B = `spiffe://${TD}/b`;

let agent: AgentUnderTest;
let java: string;
let jar: string;

function javaArgs(...clientArgs: string[]): string[] {
  // HOME is /nonexistent for the test uids; nothing here needs a home, but the JVM should not go looking.
  // No perf data files, quick JIT and a small heap: each run is one short-lived client.
  return ['-Duser.home=/tmp', '-XX:-UsePerfData', '-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC', '-Xmx128m', '-jar', jar, ...clientArgs];
}

/**
 * grpc-java (under java-spiffe) sends the socket path as the HTTP/2 :authority on a unix: endpoint; Node's
 * HTTP/2 layer (nghttp2) rejects an authority containing '/' with RST_STREAM PROTOCOL_ERROR before any gRPC
 * handler runs (spire-agent's Go server accepts it). Name that in the failure instead of a bare "Internal".
 */
function explainJava(r: RunResult): string {
  const hint = /RST_STREAM closed stream\. HTTP\/2 error code: PROTOCOL_ERROR/.test(r.stdout)
    ? 'AGENT BUG: the agent reset the stream at the HTTP/2 layer; grpc-java sends :authority=<socket path> on Unix ' +
      'sockets and the agent must accept it (spire-agent does); see test/interop/java-spiffe.test.ts.\n'
    : '';
  return hint + explain(r, agent);
}

/**
 * A plain TCP->Unix byte relay run as `uid`: java-spiffe dials tcp://127.0.0.1:<port> (grpc-java then sends a
 * host:port authority), and the agent attests the relay process, so the relay's uid picks the identity.
 * This isolates what java-spiffe thinks of the SVIDs, bundles and JWTs from the Unix-socket transport.
 */
async function startRelay(uid: number): Promise<{ endpoint: string; stop: () => void }> {
  const script = `const net = require('node:net');
const s = net.createServer((c) => { const u = net.connect(process.argv[1]); c.pipe(u); u.pipe(c);
  c.on('error', () => u.destroy()); u.on('error', () => c.destroy()); });
s.listen(0, '127.0.0.1', () => console.error('LISTEN ' + s.address().port));`;
  const relay = spawnAs(uid, agent, process.execPath, ['-e', script, agent.socketPath], 120_000);
  const m = await relay.waitForStderr(/LISTEN (\d+)/, 10_000);
  return { endpoint: `tcp://127.0.0.1:${m[1]}`, stop: () => relay.proc.kill('SIGKILL') };
}

beforeAll(async () => {
  assertPrerequisites();
  if (!existsSync(JAR_BUILT) || !existsSync(JAVA_PATH_FILE)) {
    throw new Error('interop prerequisites missing: java-client.jar (run: bash test/interop/setup-java.sh; needs a JDK >= 17 and Maven)');
  }
  java = readFileSync(JAVA_PATH_FILE, 'utf8').trim();
  agent = await AgentUnderTest.start({ entries: [uidEntry(ID_A, UID_A), uidEntry(ID_B, UID_B)], x509SvidTtl: '20s', jwtSvidTtl: '5m' });
  // A copy inside the agent's 0755 dir keeps the jar readable by the test uids wherever the repo lives.
  jar = path.join(agent.dir, 'java-client.jar');
  await copyFile(JAR_BUILT, jar);
  await chmod(jar, 0o644);
});

afterAll(async () => {
  await agent?.stop();
});

describe('java-spiffe DefaultWorkloadApiClient against spiffe-agent', () => {
  it('java-spiffe as uid 1001 gets spiffe://example.org/a; verifyChain and JwtSvid.parseAndValidate accept it', async () => {
    const audience = `spiffe://${TD}/java-audience`;
    const r = await runAs(UID_A, agent, java, javaArgs('--audience', audience, '--timeout-seconds', '30'));
    expect(r.code, explainJava(r)).toBe(0);
    const out = r.json;
    expect(out?.ok, explainJava(r)).toBe(true);

    expect(out.x509Svids).toHaveLength(1);
    const svid = out.x509Svids[0];
    expect(svid.spiffeId).toBe(ID_A);
    expect(svid.chainVerified).toBe(true); // X509SvidValidator.verifyChain returned without throwing
    expect(svid.chainLength).toBeGreaterThanOrEqual(1);
    expect(svid.uriSans).toEqual([ID_A]);
    const lifetime = Date.parse(svid.notAfter) - Date.parse(svid.notBefore);
    expect(lifetime).toBeGreaterThanOrEqual(15_000);
    expect(lifetime).toBeLessThanOrEqual(90_000);
    expect(Date.parse(svid.notAfter)).toBeGreaterThan(Date.now());
    // java-spiffe keys bundles by TrustDomain; the client prints them as trust domain IDs.
    expect(out.x509BundleTrustDomains).toEqual([`spiffe://${TD}`]);
    expect(out.x509BundleAuthorities).toBeGreaterThanOrEqual(1);

    // JwtSvid.parseAndValidate (signature against the fetched JWT bundle, aud, exp, typ, kid) returned this.
    expect(out.jwtSvid.sub).toBe(ID_A);
    expect(out.jwtSvid.aud).toEqual([audience]);
    expect(out.jwtBundleTrustDomains).toEqual([`spiffe://${TD}`]);
    const expMs = Date.parse(out.jwtSvid.exp);
    expect(expMs).toBeGreaterThan(Date.now());
    expect(expMs).toBeLessThanOrEqual(Date.now() + 5 * 60_000 + 5_000);

    // The streaming sources initialised from the agent's first stream messages and agree.
    expect(out.x509SourceSpiffeId).toBe(ID_A);
    expect(out.jwtSourceSubject).toBe(ID_A);
  });

  it('java-spiffe as uid 1002 gets its own identity spiffe://example.org/b, not a', async () => {
    const r = await runAs(UID_B, agent, java, javaArgs('--timeout-seconds', '30'));
    expect(r.code, explainJava(r)).toBe(0);
    expect(r.json.x509Svids.map((s: { spiffeId: string }) => s.spiffeId)).toEqual([ID_B]);
    expect(r.json.jwtSvid.sub).toBe(ID_B);
  });

  it('java-spiffe as uid 1003 (no entry) is refused with PermissionDenied', async () => {
    const r = await runAs(UID_NONE, agent, java, javaArgs('--timeout-seconds', '15'));
    expect(r.code, explainJava(r)).toBe(1);
    expect(r.json?.ok, explainJava(r)).toBe(false);
    expect(r.json?.step, explainJava(r)).toBe('FetchX509Context');
    expect(r.json?.code, explainJava(r)).toBe('PermissionDenied');
  });
});

describe('java-spiffe validators on what spiffe-agent serves, through a TCP relay (transport-independent)', () => {
  it('relay as uid 1001: java-spiffe gets spiffe://example.org/a; verifyChain, parseAndValidate and both sources accept it', async () => {
    const relay = await startRelay(UID_A);
    try {
      const audience = `spiffe://${TD}/java-audience`;
      const r = await runJavaVia(relay.endpoint, UID_A, ['--audience', audience, '--timeout-seconds', '30']);
      expect(r.code, explainJava(r)).toBe(0);
      const out = r.json;
      expect(out.x509Svids.map((s: { spiffeId: string }) => s.spiffeId)).toEqual([ID_A]);
      expect(out.x509Svids[0].chainVerified).toBe(true);
      expect(out.x509Svids[0].uriSans).toEqual([ID_A]);
      expect(out.x509BundleTrustDomains).toEqual([`spiffe://${TD}`]);
      expect(out.jwtSvid.sub).toBe(ID_A);
      expect(out.jwtSvid.aud).toEqual([audience]);
      expect(out.jwtBundleTrustDomains).toEqual([`spiffe://${TD}`]);
      expect(out.x509SourceSpiffeId).toBe(ID_A);
      expect(out.jwtSourceSubject).toBe(ID_A);
    } finally {
      relay.stop();
    }
  });

  it('relay as uid 1003 (no entry): java-spiffe is refused with PermissionDenied', async () => {
    const relay = await startRelay(UID_NONE);
    try {
      const r = await runJavaVia(relay.endpoint, UID_NONE, ['--timeout-seconds', '15']);
      expect(r.code, explainJava(r)).toBe(1);
      expect(r.json?.step, explainJava(r)).toBe('FetchX509Context');
      expect(r.json?.code, explainJava(r)).toBe('PermissionDenied');
    } finally {
      relay.stop();
    }
  });
});

/** runAs, but with SPIFFE_ENDPOINT_SOCKET pointing at a relay instead of the agent's socket. */
function runJavaVia(endpoint: string, uid: number, clientArgs: string[]): Promise<RunResult> {
  const viaRelay = Object.create(agent, { endpoint: { value: endpoint } }) as AgentUnderTest;
  return runAs(uid, viaRelay, java, javaArgs(...clientArgs));
}
