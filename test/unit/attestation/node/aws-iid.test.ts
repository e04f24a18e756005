/**
 * aws_iid against the fake IMDS (test/helpers/cloud/aws-imds.ts): the requests spire-agent
 * v1.13.3's AWS SDK client makes (token PUT with a 300 s TTL, then three GETs with the token), its
 * IMDSv1 fallback, and the payload as Go's json.Marshal writes it. The same answers are compared
 * byte for byte with spire-agent's in test/interop/server/cloud-aws-iid.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseAwsIidConfig } from '../../../../src/attestation/node/aws_iid/config.js';
import { SDK_TIMING, type ImdsTiming } from '../../../../src/attestation/node/aws_iid/imds-client.js';
import { AwsIidAttestor, DOCUMENT_PATH, RSA2048_PATH, SIGNATURE_PATH } from '../../../../src/attestation/node/aws_iid/index.js';
import { NODE_ATTESTORS } from '../../../../src/attestation/node/catalog.js';
import type { PluginConfig } from '../../../../src/config/types.js';
import { nullLogger } from '../../../../src/telemetry/logger.js';
import { FakeIMDS, RECORDED } from '../../../helpers/cloud/aws-imds.js';
import { failureOf } from '../../../helpers/failure.js';

const plugin = (data: Record<string, unknown>): PluginConfig => ({ type: 'NodeAttestor', name: 'aws_iid', enabled: true, data, dataFile: undefined, path: 'plugins.NodeAttestor.aws_iid' });
/** The SDK's timing, with shorter waits so error cases take well under a second. */
const FAST: ImdsTiming = { ...SDK_TIMING, headerMs: 150, operationMs: 1500, backoffMs: 20 };

let imds: FakeIMDS;
beforeEach(async () => {
  imds = await FakeIMDS.start();
});
afterEach(() => imds.close());

const attestor = (env: Record<string, string> = {}, data: Record<string, unknown> = { ec2_metadata_endpoint: imds.endpoint }) =>
  new AwsIidAttestor(parseAwsIidConfig(plugin(data), env), { log: nullLogger, timing: FAST });
const payload = async (a = attestor()) => JSON.parse(Buffer.from(await a.payload(new AbortController().signal)).toString('utf8')) as Record<string, string>;
const failure = (a = attestor()) => failureOf(a.payload(new AbortController().signal));

describe('aws_iid config', () => {
  it('reads ec2_metadata_endpoint; without it, AWS_EC2_METADATA_SERVICE_ENDPOINT, then the IPv6 or IPv4 default', () => {
    expect(parseAwsIidConfig(plugin({ ec2_metadata_endpoint: 'http://10.0.0.1:81' }), { AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://x' }).endpoint).toBe('http://10.0.0.1:81');
    expect(parseAwsIidConfig(plugin({}), { AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://x:1' }).endpoint).toBe('http://x:1');
    expect(parseAwsIidConfig(plugin({}), { AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE: 'ipv6' }).endpoint).toBe('http://[fd00:ec2::254]');
    expect(parseAwsIidConfig(plugin({}), {})).toEqual({ endpoint: 'http://169.254.169.254', disabled: false, v1Disabled: false });
  });

  it('refuses an unknown key, a non-http endpoint and bad AWS_ environment values, naming the key', () => {
    expect(() => parseAwsIidConfig(plugin({ ec2_metadata_endpiont: 'x' }), {})).toThrow(/ec2_metadata_endpiont/);
    expect(() => parseAwsIidConfig(plugin({ ec2_metadata_endpoint: 'ftp://x' }), {})).toThrow(/plugins\.NodeAttestor\.aws_iid\.plugin_data\.ec2_metadata_endpoint.*not an http/);
    expect(() => parseAwsIidConfig(plugin({}), { AWS_EC2_METADATA_V1_DISABLED: 'yes' })).toThrow(/need true or false/);
    expect(() => parseAwsIidConfig(plugin({}), { AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE: 'IPv5' })).toThrow(/IPv6 or IPv4/);
  });

  it('is in the catalog under spire-agent\'s name', () => {
    expect(NODE_ATTESTORS.names).toContain('aws_iid');
  });
});

describe('aws_iid payload', () => {
  it('asks for a 300 s session token, then document, signature and rsa2048 with it', async () => {
    await payload();
    expect(imds.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['PUT /latest/api/token', `GET ${DOCUMENT_PATH}`, `GET ${SIGNATURE_PATH}`, `GET ${RSA2048_PATH}`]);
    expect(imds.requests[0]!.ttl).toBe('300');
    const token = imds.requests[1]!.token;
    expect(token && imds.tokens.has(token)).toBe(true);
    expect(imds.requests.slice(1).every((r) => r.token === token)).toBe(true);
  });

  it('is Go\'s json.Marshal of {document, signature, rsa2048}: the recorded texts verbatim, in that order', async () => {
    const bytes = Buffer.from(await attestor().payload(new AbortController().signal)).toString('utf8');
    expect(Object.keys(JSON.parse(bytes))).toEqual(['document', 'signature', 'rsa2048']);
    expect(JSON.parse(bytes)).toEqual({ document: RECORDED.document.toString(), signature: RECORDED.signature.toString(), rsa2048: RECORDED.rsa2048.toString() });
    expect(bytes.startsWith('{"document":"{\\n  \\"accountId\\" : \\"123456789012\\",\\n')).toBe(true);
  });

  it('falls back to IMDSv1 when the token PUT answers 403, 404 or 405, as the SDK does', async () => {
    for (const status of [403, 404, 405] as const) {
      imds.requests.length = 0;
      imds.tokenAnswer = status;
      expect((await payload()).document).toBe(RECORDED.document.toString());
      expect(imds.requests.map((r) => r.method)).toEqual(['PUT', 'GET', 'GET', 'GET']);
      expect(imds.requests.slice(1).every((r) => r.token === undefined)).toBe(true);
    }
  });

  it('retries the token PUT on 500, then sends that request without a token', async () => {
    imds.tokenAnswer = 500;
    await payload();
    expect(imds.seen('/latest/api/token').length).toBeGreaterThanOrEqual(3);
  });

  it('with AWS_EC2_METADATA_V1_DISABLED=true, a refused token is an error', async () => {
    imds.tokenAnswer = 403;
    const err = await failure(attestor({ AWS_EC2_METADATA_V1_DISABLED: 'true' }));
    expect(err.message).toMatch(/PUT http:\/\/127\.0\.0\.1:\d+\/latest\/api\/token answered HTTP 403/);
    expect(imds.seen(DOCUMENT_PATH)).toEqual([]);
  });

  it('AWS_EC2_METADATA_DISABLED=true refuses without asking', async () => {
    expect((await failure(attestor({ AWS_EC2_METADATA_DISABLED: 'TRUE' }))).message).toMatch(/AWS_EC2_METADATA_DISABLED/);
    expect(imds.requests).toEqual([]);
  });

  it('replaces the endpoint URL\'s path, as the SDK does', async () => {
    await payload(attestor({}, { ec2_metadata_endpoint: `${imds.endpoint}/latest` }));
    expect(imds.requests[0]!.path).toBe('/latest/api/token');
  });
});

describe('aws_iid errors name the URL and what to do', () => {
  it('no metadata service: "this node is not on AWS, or IMDS is disabled", after the SDK\'s 3 attempts', async () => {
    const endpoint = imds.endpoint;
    await imds.close();
    const err = await failure(attestor({}, { ec2_metadata_endpoint: endpoint }));
    expect(err.code).toBe('node_attestor_io');
    expect(err.message).toContain(`nodeattestor(aws_iid): no metadata service at ${endpoint}: this node is not on AWS, or IMDS is disabled`);
    imds = await FakeIMDS.start();
  });

  it('a slow service: accepted the connection but did not answer in time', async () => {
    imds.slowMs = 2000;
    expect((await failure()).message).toMatch(/the metadata service at http:\/\/127\.0\.0\.1:\d+ accepted the connection but did not answer in time/);
  });

  it('401: IMDSv1 disabled and no token, with the hop-limit hint when the token PUT is dropped', async () => {
    imds.tokenAnswer = 'drop';
    imds.v1 = false;
    const err = await failure();
    expect(err.message).toMatch(/GET http:\/\/127\.0\.0\.1:\d+\/latest\/dynamic\/instance-identity\/document answered HTTP 401: IMDSv1 is disabled/);
    expect(err.message).toMatch(/HttpPutResponseHopLimit to 2/);
  });

  it('v1 disabled with a working token flow attests (the token is sent)', async () => {
    imds.v1 = false;
    expect((await payload()).rsa2048).toBe(RECORDED.rsa2048.toString());
  });

  it.each([
    [403, /answered HTTP 403: the metadata service refused the request/],
    [404, /answered HTTP 404: no instance identity document there/],
  ])('%i on the document says so', async (status, re) => {
    imds.dataStatus = status;
    const err = await failure();
    expect(err.message).toMatch(re);
    expect(err.message).toContain('/latest/dynamic/instance-identity/document');
    expect(imds.seen(DOCUMENT_PATH)).toHaveLength(1);
  });

  it.each([
    ['not JSON', Buffer.from('<html>captive portal</html>'), /not JSON/],
    ['not an object', Buffer.from('[1,2]'), /not a JSON object/],
    ['without instanceId', Buffer.from('{"accountId":"1","region":"us-west-2"}'), /no instanceId/],
  ])('a malformed document (%s) is refused before anything is sent', async (_n, doc, re) => {
    imds.document = doc;
    const err = await failure();
    expect(err.message).toMatch(/malformed instance identity document from http:\/\/127\.0\.0\.1:\d+\/latest\/dynamic\/instance-identity\/document/);
    expect(err.message).toMatch(re);
    expect(err.message).not.toContain('captive portal');
  });
});
