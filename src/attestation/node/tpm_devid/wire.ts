/**
 * The JSON tpm_devid exchanges with spire-server, byte for byte as spire-agent v1.13.3 writes it
 * (Go's encoding/json over pkg/common/plugin/tpmdevid's structs): field names as Go spells them,
 * in declaration order, every []byte as standard padded base64.
 *
 *   payload   {"DevIDCert":[b64...],"DevIDPub":b64,"EKCert":b64,"EKPub":b64,"AKPub":b64,
 *              "CertifiedDevID":b64,"CertificationSignature":b64}
 *   challenge {"DevID":b64 nonce,"CredActivation":{"Credential":b64,"Secret":b64}}
 *   answer    {"DevID":b64 signature,"CredActivation":b64 recovered secret}
 *
 * The server strips the 2-byte TPM2B size from Credential and Secret; they are passed on as is
 * and the TPM command puts the sizes back.
 */
import { TpmDevidError } from './errors.js';

export interface AttestationRequest {
  readonly devIDCert: readonly Uint8Array[];
  readonly devIDPub: Uint8Array;
  readonly ekCert: Uint8Array;
  readonly ekPub: Uint8Array;
  readonly akPub: Uint8Array;
  /** TPMS_ATTEST from TPM2_Certify. */
  readonly certifiedDevID: Uint8Array;
  /** TPMT_SIGNATURE from TPM2_Certify. */
  readonly certificationSignature: Uint8Array;
}

export interface ChallengeRequest {
  /** The nonce to sign with the DevID key. */
  readonly devID: Buffer;
  readonly credActivation: { readonly credential: Buffer; readonly secret: Buffer };
}

const b64 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');

export function encodeAttestationRequest(r: AttestationRequest): Uint8Array {
  return Buffer.from(
    JSON.stringify({
      DevIDCert: r.devIDCert.map(b64),
      DevIDPub: b64(r.devIDPub),
      EKCert: b64(r.ekCert),
      EKPub: b64(r.ekPub),
      AKPub: b64(r.akPub),
      CertifiedDevID: b64(r.certifiedDevID),
      CertificationSignature: b64(r.certificationSignature),
    }),
    'utf8',
  );
}

export function encodeChallengeResponse(devIDSignature: Uint8Array, credActivation: Uint8Array): Uint8Array {
  return Buffer.from(JSON.stringify({ DevID: b64(devIDSignature), CredActivation: b64(credActivation) }), 'utf8');
}

const bad = (msg: string, cause?: unknown) => new TpmDevidError('tpm_devid_challenge', `unable to unmarshal challenges: ${msg}`, { cause });

/** Go's encoding/json matches a field name case-insensitively when no exact match exists. */
function field(obj: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(obj, name)) return obj[name];
  const k = Object.keys(obj).find((x) => x.toLowerCase() === name.toLowerCase());
  return k === undefined ? undefined : obj[k];
}

const STD_B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A []byte as Go decodes it: standard base64 with padding; null or absent is empty. */
function bytes(v: unknown, what: string): Buffer {
  if (v === undefined || v === null) return Buffer.alloc(0);
  if (typeof v !== 'string' || !STD_B64.test(v)) throw bad(`${what} is not standard base64`);
  return Buffer.from(v, 'base64');
}

function object(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function parseChallengeRequest(data: Uint8Array): ChallengeRequest {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(data).toString('utf8'));
  } catch (err) {
    throw bad((err as Error).message, err);
  }
  if (!object(doc)) throw bad('not a JSON object');
  const devID = bytes(field(doc, 'DevID'), 'DevID');
  if (devID.length === 0) throw bad('the DevID proof-of-possession nonce is empty');
  const ca = field(doc, 'CredActivation');
  // spire-agent's words for this case.
  if (ca === undefined || ca === null) throw new TpmDevidError('tpm_devid_challenge', 'received empty credential activation challenge from server');
  if (!object(ca)) throw bad('CredActivation is not an object');
  const credential = bytes(field(ca, 'Credential'), 'CredActivation.Credential');
  const secret = bytes(field(ca, 'Secret'), 'CredActivation.Secret');
  if (credential.length === 0 || secret.length === 0) throw bad('the credential activation challenge has an empty Credential or Secret');
  return { devID, credActivation: { credential, secret } };
}
