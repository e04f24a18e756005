/**
 * aws_iid: attests an EC2 instance with the identity document AWS signs for it, read from the
 * instance metadata service (no secret is provisioned to the node). As spire-agent v1.13.3
 * (pkg/agent/plugin/nodeattestor/awsiid): one payload, no challenge, sent as Go's json.Marshal of
 * `{document, signature, rsa2048}` (pkg/common/plugin/aws), each the text IMDS returned, read
 * from /latest/dynamic/instance-identity/{document,signature,rsa2048} in that order: both
 * signatures, so the payload also suits servers that verify the older RSA-1024 one.
 *
 * spire-agent sends whatever the document endpoint returns; this agent first checks that it is a
 * JSON object with the fields the server reads, so a wrong endpoint is reported here, naming the
 * URL, rather than as a parse error from the server. Neither the token nor the document is logged;
 * the log carries the instance ID, account and region.
 */
import type { Logger } from '../../../telemetry/logger.js';
import { NodeAttestorError } from '../errors.js';
import { goJsonObject } from '../go-json.js';
import type { AttestationStream, NodeAttestor } from '../types.js';
import { AWS_IID, type AwsIidConfig } from './config.js';
import { ImdsClient, ImdsRequestError, type ImdsTiming } from './imds-client.js';

export { AWS_IID, parseAwsIidConfig, type AwsIidConfig } from './config.js';

export const DOCUMENT_PATH = '/latest/dynamic/instance-identity/document';
export const SIGNATURE_PATH = '/latest/dynamic/instance-identity/signature';
export const RSA2048_PATH = '/latest/dynamic/instance-identity/rsa2048';

/** The fields of the identity document the server uses for the agent ID and selectors. */
const REQUIRED_FIELDS = ['accountId', 'region', 'instanceId'] as const;

const ioError = (msg: string, cause?: unknown) => new NodeAttestorError('node_attestor_io', `nodeattestor(aws_iid): ${msg}`, { cause });

export interface IdentityDocumentSummary {
  readonly accountId: string;
  readonly region: string;
  readonly instanceId: string;
}

/** Checks the document is the JSON object IMDS serves; returns what may be logged of it. */
export function summarizeDocument(text: Buffer, url: string): IdentityDocumentSummary {
  let doc: unknown;
  try {
    doc = JSON.parse(text.toString('utf8'));
  } catch {
    // JSON.parse's message (and so the cause) quotes the text; the document is not logged, so only its size is said.
    throw ioError(`malformed instance identity document from ${url}: not JSON (${text.length} bytes); is ec2_metadata_endpoint the EC2 metadata service?`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw ioError(`malformed instance identity document from ${url}: not a JSON object`);
  const d = doc as Record<string, unknown>;
  const missing = REQUIRED_FIELDS.filter((k) => typeof d[k] !== 'string' || d[k] === '');
  if (missing.length > 0) throw ioError(`malformed instance identity document from ${url}: no ${missing.join(', ')}`);
  return { accountId: d['accountId'] as string, region: d['region'] as string, instanceId: d['instanceId'] as string };
}

/** The operator's reading of a failed metadata request. */
export function explain(err: ImdsRequestError, endpoint: string, tokenFailure: string | undefined): NodeAttestorError {
  if (/no response headers|no answer within/.test(err.message) && !/ECONNREFUSED|connect timed out/.test(err.message)) {
    return ioError(`the metadata service at ${endpoint} accepted the connection but did not answer in time (${err.message})`, err);
  }
  if (err.kind === 'send' || (err.kind === 'deadline' && err.status === undefined)) {
    return ioError(`no metadata service at ${endpoint}: this node is not on AWS, or IMDS is disabled (${err.message})`, err);
  }
  switch (err.status) {
    case 401:
      return ioError(
        `${err.message}: IMDSv1 is disabled on this instance (HttpTokens=required) and no IMDSv2 session token could be had` +
          `${tokenFailure ? ` (${tokenFailure})` : ''}; if the agent runs in a container, the token answer may be dropped by the hop limit: set the instance's HttpPutResponseHopLimit to 2`,
        err,
      );
    case 403:
      return ioError(`${err.message}: the metadata service refused the request (instance metadata turned off with HttpEndpoint=disabled, or a token the service does not accept)`, err);
    case 404:
      return ioError(`${err.message}: no instance identity document there; is ec2_metadata_endpoint the EC2 metadata service?`, err);
    default:
      return ioError(err.message, err);
  }
}

export interface AwsIidDeps {
  readonly log: Logger;
  /** For tests: shorter timeouts and backoff than the SDK's. */
  readonly timing?: ImdsTiming;
}

export class AwsIidAttestor implements NodeAttestor {
  readonly name = AWS_IID;

  constructor(
    private readonly config: AwsIidConfig,
    private readonly deps: AwsIidDeps,
  ) {}

  /** The payload spire-agent would send, from a fresh IMDS session (one per attestation, as spire-agent builds one). */
  async payload(signal: AbortSignal): Promise<Uint8Array> {
    const { endpoint, disabled, v1Disabled } = this.config;
    if (disabled) throw ioError('access to the EC2 metadata service is disabled by AWS_EC2_METADATA_DISABLED=true');
    const client = new ImdsClient(endpoint, { v1Disabled, signal, ...(this.deps.timing ? { timing: this.deps.timing } : {}) });
    const read = async (path: string): Promise<Buffer> => {
      try {
        return await client.get(path);
      } catch (err) {
        if (err instanceof ImdsRequestError) throw explain(err, endpoint, client.tokenFailure);
        throw err;
      }
    };
    const document = await read(DOCUMENT_PATH);
    const summary = summarizeDocument(document, client.url(DOCUMENT_PATH));
    const signature = await read(SIGNATURE_PATH);
    const rsa2048 = await read(RSA2048_PATH);
    this.deps.log.info(
      { instance_id: summary.instanceId, account_id: summary.accountId, region: summary.region, imds: client.usedToken ? 'v2' : 'v1', document_bytes: document.length },
      'Attesting with EC2 instance identity document',
    );
    const json = goJsonObject([
      ['document', document],
      ['signature', signature],
      ['rsa2048', rsa2048],
    ]);
    return new TextEncoder().encode(json);
  }

  async attest(stream: AttestationStream, signal: AbortSignal): Promise<void> {
    const payload = await this.payload(signal);
    const challenge = await stream.sendAttestationData({ type: AWS_IID, payload });
    if (challenge !== undefined) throw new NodeAttestorError('node_attestor_unexpected_challenge', 'nodeattestor(aws_iid): server sent a challenge; aws_iid expects none');
  }
}

export function createAwsIidAttestor(config: AwsIidConfig, deps: AwsIidDeps): NodeAttestor {
  return new AwsIidAttestor(config, deps);
}
