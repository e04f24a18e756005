/**
 * The session's TLS against a real grpc-js TLS server (not a fake TLS stack): a server SVID from
 * a test CA, the agent.v1 service from our proto answering PostStatus.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { createPrivateKey } from 'node:crypto';
import { loadServiceConstructors, openServerChannel } from '../../../../src/authority/server/clients.js';
import { checkServerId, insecureCredentials, isUnknownAuthorityError, serverCredentials, serverIdOf, tlsFailureReason } from '../../../../src/authority/server/tls.js';
import { loadProto } from '../../../../src/endpoints/proto.js';
import { pemEncodeCertificates, pemEncodePrivateKey } from '../../../../src/svid/der.js';
import { TestCA } from '../../../helpers/test-ca.js';

interface Running {
  port: number;
  server: grpc.Server;
  peers: string[];
}

async function startServer(ca: TestCA, id: string, requireClientCert: boolean): Promise<Running> {
  const svid = await ca.createX509SVID(id);
  const pkg = loadProto('spire/api/server/agent/v1/agent.proto') as any;
  const server = new grpc.Server();
  const peers: string[] = [];
  server.addService(pkg.spire.api.server.agent.v1.Agent.service, {
    PostStatus: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const cert = (call as any).getAuthContext?.()?.sslPeerCertificate;
      peers.push(cert?.subjectaltname ?? '');
      cb(null, {});
    },
  });
  const creds = grpc.ServerCredentials.createSsl(
    requireClientCert ? Buffer.from(pemEncodeCertificates([ca.der()])) : null,
    [{ private_key: Buffer.from(pemEncodePrivateKey(svid.privateKeyPkcs8)), cert_chain: Buffer.from(pemEncodeCertificates(svid.chain)) }],
    requireClientCert,
  );
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? rej(e) : res(p))));
  return { port, server, peers };
}

function postStatus(creds: grpc.ChannelCredentials, port: number): Promise<void> {
  const ch = openServerChannel(loadServiceConstructors(), `127.0.0.1:${port}`, creds);
  return new Promise<void>((resolve, reject) => {
    (ch.agent as any).PostStatus({}, { deadline: Date.now() + 5000 }, (err: Error | null) => (err ? reject(err) : resolve()));
  }).finally(() => ch.close());
}

const SERVER_ID = serverIdOf('example.org');
let ca: TestCA;
let other: TestCA;
let good: Running;
let wrongId: Running;
let mtls: Running;

beforeAll(async () => {
  ca = await TestCA.create('example.org');
  other = await TestCA.create('example.org');
  good = await startServer(ca, SERVER_ID, false);
  wrongId = await startServer(ca, 'spiffe://example.org/not-the-server', false);
  mtls = await startServer(ca, SERVER_ID, true);
});
afterAll(() => {
  for (const r of [good, wrongId, mtls]) r?.server.forceShutdown();
});

describe('server TLS (no hostname check, SPIFFE ID check)', () => {
  it('accepts the server when its chain verifies against the bundle and its ID is spiffe://<td>/spire/server', async () => {
    await expect(postStatus(serverCredentials([ca.der()], SERVER_ID), good.port)).resolves.toBeUndefined();
  });

  it('refuses a server the bundle cannot verify, recognisably as an unknown authority', async () => {
    const err = await postStatus(serverCredentials([other.der()], SERVER_ID), good.port).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(isUnknownAuthorityError(err)).toBe(true);
    expect(tlsFailureReason(err)).toBe('unable to verify the first certificate');
  });

  it('refuses a verified server whose ID is not the server ID', async () => {
    const err = (await postStatus(serverCredentials([ca.der()], SERVER_ID), wrongId.port).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
    expect(err.details).toContain(`expected server SPIFFE ID "${SERVER_ID}"`);
    expect(isUnknownAuthorityError(err)).toBe(false);
  });

  it('presents the agent SVID when given (mTLS)', async () => {
    const agent = await ca.createX509SVID('spiffe://example.org/spire/agent/join_token/t');
    const key = createPrivateKey({ key: Buffer.from(agent.privateKeyPkcs8), format: 'der', type: 'pkcs8' });
    await postStatus(serverCredentials([ca.der()], SERVER_ID, { chain: agent.chain, key }), mtls.port);
    expect(mtls.peers.at(-1)).toContain('URI:spiffe://example.org/spire/agent/join_token/t');
    await expect(postStatus(serverCredentials([ca.der()], SERVER_ID), mtls.port)).rejects.toBeInstanceOf(Error);
  });

  it('insecure bootstrap skips the chain but still requires the server ID', async () => {
    await expect(postStatus(await insecureCredentials('127.0.0.1', good.port, SERVER_ID), good.port)).resolves.toBeUndefined();
    await expect(insecureCredentials('127.0.0.1', wrongId.port, SERVER_ID)).rejects.toThrow(/expected server SPIFFE ID/);
  });

  it('checkServerId wants exactly one URI SAN equal to the server ID', async () => {
    const two = await ca.createX509SVID(SERVER_ID, { extraUris: ['spiffe://example.org/x'] });
    expect(checkServerId(two.chain[0]!, SERVER_ID)).toMatch(/expected server SPIFFE ID/);
    const one = await ca.createX509SVID(SERVER_ID);
    expect(checkServerId(one.chain[0]!, SERVER_ID)).toBeUndefined();
  });
});
