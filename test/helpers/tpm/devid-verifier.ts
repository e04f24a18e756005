/**
 * The server side of tpm_devid, written from what spire-server v1.13.3's tpm_devid plugin checks
 * (pkg/server/plugin/nodeattestor/tpmdevid), for tests that need no SPIRE: the DevID chain to the
 * DevID CA, the EK certificate's key equal to EKPub and its chain to the endorsement CA, the AK's
 * RSASSA/SHA-256 signature over CertifiedDevID naming the DevID key, then the two challenges (a
 * 32-byte nonce for the DevID key to sign, a credential sealed to AK Name and EK) and their answers.
 * Public areas are read with src/tpm's parser; every signature is checked with node:crypto.
 */
import { X509Certificate, createHash, randomBytes, verify, type KeyObject } from 'node:crypto';
import type { AttestationStream } from '../../../src/attestation/node/types.js';
import { ALG, objectName, parseAttest, parsePublic, publicKeyOf } from '../../../src/tpm/index.js';
import { pemDecode } from '../../../src/svid/der.js';
import { makeCredential } from './make-credential.js';

export interface VerifierResult {
  agentPath: string;
  selectors: string[];
}

function chainTo(leaf: X509Certificate, intermediates: X509Certificate[], roots: X509Certificate[]): X509Certificate[] {
  const chain = [leaf];
  for (let cur = leaf; ; ) {
    const root = roots.find((r) => cur.checkIssued(r) && cur.verify(r.publicKey));
    if (root) return root.raw.equals(cur.raw) ? chain : [...chain, root];
    const next = intermediates.find((i) => cur.checkIssued(i) && cur.verify(i.publicKey));
    if (!next || chain.length > 8) throw new Error(`verification failed: ${cur.subject} does not chain to a trusted root`);
    chain.push(next);
    cur = next;
  }
}

const certsOf = (pem: string) => pemDecode(pem, 'CERTIFICATE').map((d) => new X509Certificate(d));
const sha1 = (c: X509Certificate) => createHash('sha1').update(c.raw).digest('hex');
const cn = (dn: string) => /(?:^|\n)CN=([^\n]*)/.exec(dn)?.[1] ?? '';

/** TPMT_SIGNATURE of RSASSA: sigAlg, hash, TPM2B signature. */
function rsassa(sig: Buffer): Buffer {
  if (sig.readUInt16BE(0) !== ALG.RSASSA) throw new Error('certification signature is not RSASSA');
  const size = sig.readUInt16BE(4);
  return sig.subarray(6, 6 + size);
}

export class DevIDVerifier {
  /** What the last attestation sent, to compare with what another agent sends. */
  payload: Record<string, unknown> | undefined;

  constructor(
    private readonly devidCaPem: string,
    private readonly endorsementCaPem: string,
  ) {}

  /** A stream that runs the server's side; resolves `result` when the agent's answers verify. */
  stream(): AttestationStream & { result: Promise<VerifierResult> } {
    let resolve!: (r: VerifierResult) => void;
    let reject!: (e: Error) => void;
    const result = new Promise<VerifierResult>((res, rej) => ((resolve = res), (reject = rej)));
    result.catch(() => undefined);
    let expected: { nonce: Buffer; secret: Buffer; devid: X509Certificate; selectors: string[]; agentPath: string } | undefined;
    return {
      result,
      sendAttestationData: async (data) => {
        try {
          if (data.type !== 'tpm_devid') throw new Error(`attestation type ${data.type}`);
          const req = JSON.parse(Buffer.from(data.payload).toString()) as Record<string, unknown>;
          this.payload = req;
          const b = (k: string) => Buffer.from(req[k] as string, 'base64');
          const devidChain = (req['DevIDCert'] as string[]).map((s) => new X509Certificate(Buffer.from(s, 'base64')));
          const chain = chainTo(devidChain[0]!, devidChain.slice(1), certsOf(this.devidCaPem));
          const ekCert = new X509Certificate(b('EKCert'));
          const ekPub = parsePublic(b('EKPub'));
          const ekKey: KeyObject = publicKeyOf(ekPub.area);
          if (!ekKey.export({ type: 'spki', format: 'der' }).equals(ekCert.publicKey.export({ type: 'spki', format: 'der' }))) throw new Error('public key in EK certificate differs from EKPub');
          const pool = certsOf(this.endorsementCaPem);
          chainTo(ekCert, pool, pool.filter((c) => c.issuer === c.subject));
          const akPub = parsePublic(b('AKPub'));
          if (!verify('sha256', b('CertifiedDevID'), publicKeyOf(akPub.area), rsassa(b('CertificationSignature')))) throw new Error('AK signature over CertifiedDevID does not verify');
          const attest = parseAttest(b('CertifiedDevID'));
          if (!attest.certified?.name.equals(objectName(parsePublic(b('DevIDPub'))))) throw new Error('certified name is not the DevID key');
          const nonce = randomBytes(32);
          const secret = randomBytes(32);
          const cred = makeCredential(ekKey, objectName(akPub), secret);
          const selectors = [`subject:cn:${cn(chain[0]!.subject)}`, `issuer:cn:${cn(chain[0]!.issuer)}`, ...chain.slice(1).map((c) => `ca:fingerprint:${sha1(c)}`)];
          expected = { nonce, secret, devid: chain[0]!, selectors, agentPath: `/spire/agent/tpm_devid/${sha1(chain[0]!)}` };
          return Buffer.from(JSON.stringify({ DevID: nonce.toString('base64'), CredActivation: { Credential: cred.credentialBlob.toString('base64'), Secret: cred.secret.toString('base64') } }));
        } catch (err) {
          reject(err as Error);
          throw err;
        }
      },
      sendChallengeResponse: async (resp) => {
        try {
          if (!expected) throw new Error('answer before challenge');
          const r = JSON.parse(Buffer.from(resp).toString()) as { DevID: string; CredActivation: string };
          if (!verify('sha256', expected.nonce, expected.devid.publicKey, Buffer.from(r.DevID, 'base64'))) throw new Error('devID challenge verification failed');
          if (!Buffer.from(r.CredActivation, 'base64').equals(expected.secret)) throw new Error('credential activation failed: nonces are different');
          resolve({ agentPath: expected.agentPath, selectors: expected.selectors });
          return undefined;
        } catch (err) {
          reject(err as Error);
          throw err;
        }
      },
    };
  }
}
