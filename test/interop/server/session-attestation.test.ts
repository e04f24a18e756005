/**
 * Node attestation against a real spire-server v1.13.3: join_token and x509pop through AttestAgent,
 * the ID the server assigns, resume from data_dir without attesting again, and the refusals a user
 * must be able to act on (used token, wrong bundle).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeX509popCA, startSpireServer, type SpireServer, type X509popCA } from '../../helpers/spire/index.js';
import { TestCA } from '../../helpers/test-ca.js';
import { pemEncodeCertificates } from '../../../src/svid/der.js';
import { agentOnlyCall, newDataDir, planSessionSuite, serialOf, sessionFor } from './session-fixture.js';

const plan = planSessionSuite();

describe.skipIf(plan.skip)('session: node attestation with spire-server v1.13.3', () => {
  let server: SpireServer;
  let pop: X509popCA;
  const dirs: string[] = [];
  const dir = async () => {
    const d = await newDataDir();
    dirs.push(d);
    return d;
  };

  beforeAll(async () => {
    if (!plan.bins) throw new Error(plan.reason);
    pop = await makeX509popCA();
    server = await startSpireServer({ bins: plan.bins, nodeAttestors: { joinToken: true, x509pop: { caBundlePath: pop.caBundlePath } } });
  });
  afterAll(async () => {
    await server?.destroy();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('join_token: the server assigns spiffe://<td>/spire/agent/join_token/<token>, lists the agent, and the mTLS channel works', async () => {
    const token = await server.generateToken();
    const dataDir = await dir();
    const { session, log } = sessionFor(server, { dataDir, joinToken: token });
    await session.start(new AbortController().signal);
    try {
      expect(session.agentSVID().spiffeId).toBe(server.agentIdForToken(token));
      const agents = await server.listAgents();
      const me = agents.find((a) => a.id === server.agentIdForToken(token));
      expect(me?.attestationType).toBe('join_token');
      expect(me?.serial).toBe(serialOf(session));
      await expect(agentOnlyCall(session)).resolves.toBeInstanceOf(Uint8Array);
      for (const f of ['agent-data.json', 'keys.json']) expect((await stat(join(dataDir, f))).mode & 0o777).toBe(0o600);
      // The token is a secret: the session never logs it.
      expect(log.lines.join('\n')).not.toContain(token);
    } finally {
      await session.close();
    }

    // Restart: the stored SVID is resumed, the (now used) token is not needed, the server sees no new attestation.
    const again = sessionFor(server, { dataDir });
    await again.session.start(new AbortController().signal);
    try {
      expect(again.log.has('SVID loaded')).toBe(true);
      expect(again.log.has('Node attestation was successful')).toBe(false);
      expect(serialOf(again.session)).toBe((await server.listAgents()).find((a) => a.id === server.agentIdForToken(token))?.serial);
      await expect(agentOnlyCall(again.session)).resolves.toBeInstanceOf(Uint8Array);
    } finally {
      await again.session.close();
    }

    // A second node with the same token is refused.
    const second = sessionFor(server, { dataDir: await dir(), joinToken: token });
    await expect(second.session.start(new AbortController().signal)).rejects.toThrow(/join token does not exist or has already been used/);
  });

  it('x509pop: proves the key (EC leaf via an intermediate), gets the fingerprint ID and is re-attestable', async () => {
    const node = await pop.issueNode('n1', { viaIntermediate: true });
    const dataDir = await dir();
    const { session } = sessionFor(server, { dataDir, x509pop: node });
    await session.start(new AbortController().signal);
    try {
      expect(session.agentSVID().spiffeId).toBe(node.agentId(server.trustDomain));
      const me = (await server.listAgents()).find((a) => a.id === node.agentId(server.trustDomain));
      expect(me?.attestationType).toBe('x509pop');
      expect(me?.canReattest).toBe(true);
      expect(JSON.parse(await readFile(join(dataDir, 'agent-data.json'), 'utf8')).reattestable).toBe(true);
    } finally {
      await session.close();
    }
  });

  it('x509pop with an RSA node key: RSA-PSS over the nonce digest verifies on the server', async () => {
    const svid = await pop.ca.createX509SVID('spiffe://example.org/node/rsa', { keyType: 'rsa-2048', ttlMs: 3600_000 });
    const d = await dir();
    const node = { certificatePath: join(d, 'rsa.crt.pem'), privateKeyPath: join(d, 'rsa.key.pem') };
    await writeFile(node.certificatePath, pemEncodeCertificates([svid.chain[0]!]));
    await writeFile(node.privateKeyPath, `-----BEGIN PRIVATE KEY-----\n${Buffer.from(svid.privateKeyPkcs8).toString('base64')}\n-----END PRIVATE KEY-----\n`);
    const { session } = sessionFor(server, { dataDir: d, x509pop: node });
    await session.start(new AbortController().signal);
    try {
      expect(session.agentSVID().spiffeId).toBe(`spiffe://${server.trustDomain}/spire/agent/x509pop/${createHash('sha1').update(svid.chain[0]!).digest('hex')}`);
    } finally {
      await session.close();
    }
  });

  it('refuses a server the trust bundle cannot verify, saying which setting to check', async () => {
    const other = await TestCA.create(server.trustDomain);
    const bundle = join(await dir(), 'wrong.pem');
    await writeFile(bundle, pemEncodeCertificates([other.der()]));
    const { session } = sessionFor(server, { dataDir: await dir(), joinToken: await server.generateToken(), trustBundlePath: bundle });
    await expect(session.start(new AbortController().signal)).rejects.toMatchObject({
      code: 'server_unknown_authority',
      message: expect.stringContaining('trust_bundle_path'),
    });
  });

  it('insecure_bootstrap attests (server ID still checked) and then keeps the server bundle', async () => {
    const dataDir = await dir();
    const { session } = sessionFor(server, { dataDir, joinToken: await server.generateToken(), insecureBootstrap: true });
    await session.start(new AbortController().signal);
    try {
      const doc = JSON.parse(await readFile(join(dataDir, 'agent-data.json'), 'utf8'));
      expect(doc.bundle.length).toBeGreaterThan(0);
      await expect(agentOnlyCall(session)).resolves.toBeInstanceOf(Uint8Array);
    } finally {
      await session.close();
    }
  });

  it('retry_bootstrap keeps attesting with backoff while the server is down, and succeeds once it is back', async () => {
    const token = await server.generateToken();
    await server.stop();
    const { session, log } = sessionFor(server, { dataDir: await dir(), joinToken: token, retryBootstrap: true });
    const started = session.start(new AbortController().signal);
    await new Promise((r) => setTimeout(r, 7_000));
    await server.restart();
    await started;
    try {
      expect(log.has('Failed to retrieve attestation result')).toBe(true);
      expect(session.agentSVID().spiffeId).toBe(server.agentIdForToken(token));
    } finally {
      await session.close();
    }
    // Without retry_bootstrap the first failure is final.
    await server.stop();
    const once = sessionFor(server, { dataDir: await dir(), joinToken: await Promise.resolve('unused-token') });
    await expect(once.session.start(new AbortController().signal)).rejects.toThrow(/node attestation with join_token failed|No connection|ECONNREFUSED/);
    await server.restart();
  }, 120_000);

  it('memory KeyManager: a restart has no key for the stored SVID, and a used join token cannot attest again', async () => {
    const dataDir = await dir();
    const token = await server.generateToken();
    const first = sessionFor(server, { dataDir, joinToken: token, keyManager: 'memory' });
    await first.session.start(new AbortController().signal);
    await first.session.close();
    const second = sessionFor(server, { dataDir, joinToken: token, keyManager: 'memory' });
    await expect(second.session.start(new AbortController().signal)).rejects.toMatchObject({ code: 'not_reattestable', message: expect.stringContaining('agent-data.json') });
    expect(second.log.has('SVID recovered, but no keys found')).toBe(true);
  });
});
