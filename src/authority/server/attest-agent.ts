/**
 * One AttestAgent exchange: the node attestor drives it through AttestationStream; this side
 * adds the CSR to the first message, relays challenges and answers, and returns the SVID the
 * server assigned (the agent never chooses its own ID: the CSR carries no URI SAN).
 */
import type * as grpc from '@grpc/grpc-js';
import { createPublicKey } from 'node:crypto';
import type { AttestationData, AttestationStream, NodeAttestor } from '../../attestation/node/types.js';
import { ECDSA_SHA256, assembleCsr, csrInfo } from '../../crypto/csr.js';
import type { ManagedKey } from '../../keymanager/types.js';
import { ATTEST_TIMEOUT_MS, SERVER_CALL_TIMEOUT_MS } from './rpc.js';
import { SessionError } from './session-errors.js';

/**
 * DER PKCS#10 as spire-agent's MakeCSRWithoutURISAN: subject C=US, O=SPIRE, ECDSA-SHA256, no SANs.
 * The key manager signs; the private key never comes here.
 */
export async function makeAgentCSR(key: Pick<ManagedKey, 'publicKeySpki' | 'sign'>): Promise<Uint8Array> {
  const pub = createPublicKey({ key: Buffer.from(key.publicKeySpki), format: 'der', type: 'spki' });
  if (pub.asymmetricKeyType !== 'ec' || pub.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new SessionError('attestation_failed', 'attest: the agent key must be EC P-256 (spire-agent\'s CSR is ECDSA-SHA256)');
  }
  const info = csrInfo(key.publicKeySpki, [
    ['C', 'US'],
    ['O', 'SPIRE'],
  ]);
  return assembleCsr(info, ECDSA_SHA256, await key.sign(info));
}

export interface AttestResult {
  /** DER, leaf first. */
  readonly chain: Uint8Array[];
  readonly reattestable: boolean;
}

interface AttestAgentResponse {
  step?: 'result' | 'challenge';
  result?: { svid?: { cert_chain?: Buffer[] }; reattestable?: boolean };
  challenge?: Buffer;
}

type BidiStream = grpc.ClientDuplexStream<unknown, AttestAgentResponse>;

/** Reads one message at a time from a duplex stream; errors and early ends become rejections. */
class Reader {
  private queue: AttestAgentResponse[] = [];
  private waiting: { resolve: (m: AttestAgentResponse) => void; reject: (e: Error) => void } | undefined;
  private failed: Error | undefined;

  constructor(stream: BidiStream) {
    stream.on('data', (m: AttestAgentResponse) => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        w.resolve(m);
      } else this.queue.push(m);
    });
    const fail = (e: Error) => {
      this.failed ??= e;
      const w = this.waiting;
      this.waiting = undefined;
      w?.reject(this.failed);
    };
    stream.on('error', fail);
    stream.on('end', () => fail(new Error('server closed the attestation stream without a result')));
  }

  next(): Promise<AttestAgentResponse> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }
}

export async function attestAgent(agentClient: grpc.Client, csr: Uint8Array, attestor: NodeAttestor, signal: AbortSignal, timeoutMs = ATTEST_TIMEOUT_MS): Promise<AttestResult> {
  const attest = (agentClient as unknown as { AttestAgent(opts?: grpc.CallOptions): BidiStream }).AttestAgent.bind(agentClient);
  let stream: BidiStream | undefined;
  let reader: Reader | undefined;
  let result: AttestResult | undefined;
  const onAbort = () => stream?.cancel();
  signal.addEventListener('abort', onAbort);

  const exchange = async (request: Record<string, unknown>): Promise<Uint8Array | undefined> => {
    if (result) throw new SessionError('attestation_protocol', `nodeattestor(${attestor.name}): plugin sent more after the server issued the SVID`);
    if (!stream) {
      stream = attest({ deadline: Date.now() + timeoutMs });
      reader = new Reader(stream);
    }
    stream.write(request);
    const resp = await (reader as Reader).next();
    if (resp.challenge && resp.step !== 'result') return new Uint8Array(resp.challenge);
    const chain = resp.result?.svid?.cert_chain ?? [];
    if (!resp.result?.svid) throw new SessionError('attestation_protocol', 'client: failed to parse attestation response: attest response is missing SVID');
    if (chain.length === 0) throw new SessionError('attestation_protocol', 'client: failed to parse attestation response: empty SVID cert chain');
    result = { chain: chain.map((c) => new Uint8Array(c)), reattestable: resp.result.reattestable === true };
    stream.end();
    return undefined;
  };

  const serverStream: AttestationStream = {
    sendAttestationData: (data: AttestationData) => {
      if (data.payload.length === 0) throw new SessionError('attestation_protocol', `nodeattestor(${attestor.name}): plugin response missing attestation payload`);
      return exchange({ params: { data: { type: data.type, payload: Buffer.from(data.payload) }, params: { csr: Buffer.from(csr) } } });
    },
    sendChallengeResponse: (response: Uint8Array) => {
      if (response.length === 0) throw new SessionError('attestation_protocol', `nodeattestor(${attestor.name}): plugin response missing challenge response`);
      return exchange({ challenge_response: Buffer.from(response) });
    },
  };
  try {
    await attestor.attest(serverStream, signal);
  } catch (err) {
    stream?.cancel();
    throw err;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  if (!result) throw new SessionError('attestation_protocol', `nodeattestor(${attestor.name}): plugin finished before the server issued an SVID`);
  return result;
}

type RenewFn = (req: unknown, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: { svid?: { cert_chain?: Buffer[] } }) => void) => grpc.ClientUnaryCall;

/** RenewAgent: the agent's new SVID chain (DER, leaf first) for `csr`, over the current mTLS channel. */
export async function renewAgent(agentClient: grpc.Client, csr: Uint8Array, signal: AbortSignal, timeoutMs = SERVER_CALL_TIMEOUT_MS): Promise<Uint8Array[]> {
  const renew = (agentClient as unknown as { RenewAgent: RenewFn }).RenewAgent.bind(agentClient);
  const res = await new Promise<{ svid?: { cert_chain?: Buffer[] } }>((resolve, reject) => {
    const onAbort = () => call.cancel();
    const call = renew({ params: { csr: Buffer.from(csr) } }, { deadline: Date.now() + timeoutMs }, (err, r) => {
      signal.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(r ?? {});
    });
    signal.addEventListener('abort', onAbort, { once: true });
  });
  const chain = (res.svid?.cert_chain ?? []).map((c) => new Uint8Array(c));
  if (chain.length === 0) throw new SessionError('attestation_protocol', 'client: RenewAgent returned no certificate chain');
  return chain;
}
