/**
 * A STAND-IN for spire-server's agent API, for tests only: it answers nothing but the first
 * message of each AttestAgent stream, records that message's attestation data (type and payload
 * bytes), and refuses the attestation.
 *
 * Why a stand-in: the cloud attestors' payloads carry documents signed by AWS/GCP/Azure, which a
 * real spire-server verifies against the vendors' keys and so always refuses here, and it never
 * tells what it was sent. To prove spiffe-agent sends exactly what spire-agent v1.13.3 sends, both
 * agents attest to this recorder and the recorded bytes are compared.
 *
 * It speaks the real agent API (our protos under proto/spire/api/server/agent/v1) over TLS as
 * spire-agent requires of a server: a certificate for spiffe://<td>/spire/server issued by a test
 * CA whose root is the PEM bundle both agents are given as trust_bundle_path. Attestation needs
 * no client certificate, so none is asked for.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PROTO_OPTIONS, protoRoot } from '../../src/endpoints/proto.js';
import { TestCA } from './test-ca.js';

export interface RecordedAttestation {
  type: string;
  payload: Buffer;
  /** When it arrived, and the client's address (which agent, if they run one after the other). */
  at: number;
  peer: string;
}

const pem = (label: string, der: Uint8Array) => `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;

export const REFUSAL = 'recording stand-in: attestation data recorded; this is not a SPIRE server';

type AttestRequest = { params?: { data?: { type?: string; payload?: Uint8Array } }; challenge_response?: Uint8Array };

export class RecordingAttestServer {
  readonly recorded: RecordedAttestation[] = [];
  readonly address = '127.0.0.1';

  private constructor(
    private readonly server: grpc.Server,
    readonly port: number,
    readonly trustDomain: string,
    /** The PEM root bundle to give the agents as trust_bundle_path. */
    readonly bundlePath: string,
  ) {}

  static async start(dir: string, trustDomain = 'example.org'): Promise<RecordingAttestServer> {
    const ca = await TestCA.create(trustDomain);
    const svid = await ca.createX509SVID(`spiffe://${trustDomain}/spire/server`, { dnsNames: ['localhost'], ttlMs: 24 * 3600_000 });
    const root = protoRoot();
    const def = protoLoader.loadSync(join(root, 'spire/api/server/agent/v1/agent.proto'), { ...PROTO_OPTIONS, includeDirs: [root] });
    const server = new grpc.Server();
    const recorded: RecordedAttestation[] = [];
    server.addService(def['spire.api.server.agent.v1.Agent'] as grpc.ServiceDefinition, {
      AttestAgent: (call: grpc.ServerDuplexStream<AttestRequest, unknown>) => {
        call.once('data', (req: AttestRequest) => {
          const data = req.params?.data;
          recorded.push({ type: data?.type ?? '', payload: Buffer.from(data?.payload ?? new Uint8Array()), at: Date.now(), peer: call.getPeer() });
          call.emit('error', Object.assign(new Error(REFUSAL), { code: grpc.status.PERMISSION_DENIED, details: REFUSAL }));
        });
      },
    });
    const creds = grpc.ServerCredentials.createSsl(
      null,
      [{ private_key: Buffer.from(pem('PRIVATE KEY', svid.privateKeyPkcs8)), cert_chain: Buffer.from(svid.chain.map((c) => pem('CERTIFICATE', c)).join('')) }],
      false,
    );
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))));
    // One bundle file per stand-in: several may share a directory.
    const bundlePath = join(dir, `stand-in-bundle-${port}.pem`);
    await writeFile(bundlePath, pem('CERTIFICATE', ca.root().der()));
    const s = new RecordingAttestServer(server, port, trustDomain, bundlePath);
    (s as { recorded: RecordedAttestation[] }).recorded = recorded;
    return s;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    this.server.forceShutdown();
  }
}
