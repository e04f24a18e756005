/**
 * azure_msi against the fake Azure IMDS (test/helpers/cloud/azure-imds.ts), reached through the
 * attestor's test-only base-URL seam (agent.conf has no such key, as spire-agent v1.13.3 has
 * none): the one GET spire-agent makes (path, api-version, resource, Metadata: true), the payload
 * bytes as Go's json.Marshal writes them, and each failure. Compared with spire-agent's in
 * test/interop/server/cloud-azure-msi.test.ts (inside a network namespace).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseAzureMsiConfig } from '../../../../src/attestation/node/azure_msi/config.js';
import { AzureMsiAttestor, goQueryEscape, msiPayload, tokenURL } from '../../../../src/attestation/node/azure_msi/index.js';
import { readAccessToken } from '../../../../src/attestation/node/azure_msi/token-response.js';
import { NODE_ATTESTORS } from '../../../../src/attestation/node/catalog.js';
import type { PluginConfig } from '../../../../src/config/types.js';
import type { Logger } from '../../../../src/telemetry/logger.js';
import { nullLogger } from '../../../../src/telemetry/logger.js';
import { FakeAzureIMDS } from '../../../helpers/cloud/azure-imds.js';
import { failureOf } from '../../../helpers/failure.js';

const plugin = (data: Record<string, unknown>): PluginConfig => ({ type: 'NodeAttestor', name: 'azure_msi', enabled: true, data, dataFile: undefined, path: 'plugins.NodeAttestor.azure_msi' });
let imds: FakeAzureIMDS;
beforeEach(async () => {
  imds = await FakeAzureIMDS.start();
});
afterEach(() => imds.close());

const attestor = (data: Record<string, unknown> = {}, o: { timeoutMs?: number; log?: Logger; base?: string } = {}) =>
  new AzureMsiAttestor(parseAzureMsiConfig(plugin(data)), { log: o.log ?? nullLogger, imdsBase: o.base ?? imds.base, connectTimeoutMs: 1000, timeoutMs: o.timeoutMs ?? 2000 });
const failure = (a = attestor()) => failureOf(a.payload(new AbortController().signal));
const TOKEN_PATH = '/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F';

describe('azure_msi config', () => {
  it('resource_id defaults to the Resource Manager; no other key (not even an endpoint) is accepted', () => {
    expect(parseAzureMsiConfig(plugin({}))).toEqual({ resourceId: 'https://management.azure.com/' });
    expect(parseAzureMsiConfig(plugin({ resource_id: '' }))).toEqual({ resourceId: 'https://management.azure.com/' });
    expect(parseAzureMsiConfig(plugin({ resource_id: 'api://spire-server' }))).toEqual({ resourceId: 'api://spire-server' });
    expect(() => parseAzureMsiConfig(plugin({ resource_ID: 'x' }))).toThrow(/resource_ID/);
    expect(() => parseAzureMsiConfig(plugin({ metadata_endpoint: 'http://127.0.0.1' }))).toThrow(/plugins\.NodeAttestor\.azure_msi.*metadata_endpoint/s);
    expect(() => parseAzureMsiConfig(plugin({ resource_id: ['a'] }))).toThrow(/resource_id/);
    expect(NODE_ATTESTORS.names).toContain('azure_msi');
  });
});

describe('azure_msi request', () => {
  it('the URL spire-agent asks, its query escaped as Go escapes it', () => {
    expect(tokenURL(parseAzureMsiConfig(plugin({})))).toBe(`http://169.254.169.254${TOKEN_PATH}`);
    expect(goQueryEscape('api://a b*~\'()!é')).toBe('api%3A%2F%2Fa+b%2A~%27%28%29%21%C3%A9');
  });

  it('asks once with Metadata: true and sends {"token":…} with the answer\'s access_token', async () => {
    const payload = Buffer.from(await attestor().payload(new AbortController().signal));
    expect(imds.requests).toEqual([{ method: 'GET', path: TOKEN_PATH, metadata: 'true' }]);
    expect(imds.token).toMatch(/^ey[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(payload.toString('utf8')).toBe(`{"token":"${imds.token}"}`);
  });

  it('never logs the token; logs the tenant and principal', async () => {
    const lines: unknown[] = [];
    const log = { ...nullLogger, info: (o: unknown) => void lines.push(o), child: () => log } as unknown as Logger;
    await attestor({}, { log }).payload(new AbortController().signal);
    expect(JSON.stringify(lines)).not.toContain(imds.token.split('.')[2]);
    expect(lines).toEqual([{ tenant_id: '72f988bf-86f1-41af-91ab-2d7cd011db47', principal_id: '9d0c6e62-3f4f-4c33-8e3f-5a1b0c1d2e3f', token_bytes: imds.token.length }]);
  });
});

describe('azure_msi payload bytes', () => {
  it('as Go\'s json.Marshal: <, >, &, U+2028 escaped; invalid UTF-8 in the answer decoded to one U+FFFD per byte, written as is', async () => {
    expect(Buffer.from(msiPayload('a<b>&c\u2028"\\\t')).toString('utf8')).toBe('{"token":"a\\u003cb\\u003e\\u0026c\\u2028\\"\\\\\\t"}');
    imds.body = Buffer.concat([Buffer.from('{"access_token":"x'), Buffer.from([0xe2, 0x82, 0x41, 0xff]), Buffer.from('<y"} trailing text')]);
    const payload = Buffer.from(await attestor().payload(new AbortController().signal));
    expect(payload.toString('utf8')).toBe('{"token":"x\ufffd\ufffdA\ufffd\\u003cy"}');
  });

  it('reads the answer as Go\'s decoder does', () => {
    const read = (s: string) => readAccessToken(Buffer.from(s));
    expect(read('{"ACCESS_TOKEN":"a"}')).toEqual({ ok: true, token: 'a' });
    expect(read(' {"access_token":"a\\u003c"}{"x":1}')).toEqual({ ok: true, token: 'a<' });
    expect(read('null')).toEqual({ ok: false, why: 'no access_token in the answer' });
    expect(read('{"access_token":null}')).toEqual({ ok: false, why: 'no access_token in the answer' });
    expect(read('{"access_token":5}')).toEqual({ ok: false, why: 'access_token is a JSON number, not a string' });
    expect(read('["a"]')).toEqual({ ok: false, why: 'a JSON array, not an object' });
    expect(read('')).toEqual({ ok: false, why: 'an empty answer, not JSON' });
    expect(read('<html>').ok).toBe(false);
  });
});

describe('azure_msi errors', () => {
  it('no metadata service: says so, naming the URL', async () => {
    const base = imds.base;
    await imds.close();
    const err = await failure(attestor({}, { base }));
    expect(err.code).toBe('node_attestor_io');
    expect(err.message).toMatch(new RegExp(`^nodeattestor\\(azure_msi\\): no metadata service at ${base} \\(.*ECONNREFUSED.*\\): this node is not on Azure, or the metadata service is unreachable`));
    imds = await FakeAzureIMDS.start();
  });

  it.each([
    [400, /answered HTTP 400, want 200: no managed identity is assigned to this VM.* \(invalid_request: Identity not found\)$/],
    [401, /answered HTTP 401, want 200: the metadata service refused the request/],
    [403, /answered HTTP 403, want 200: the metadata service refused the request/],
    [404, /answered HTTP 404, want 200: the identity endpoint is not available/],
    [500, /answered HTTP 500, want 200: a transient metadata service error/],
  ])('HTTP %i is refused, naming the URL and why', async (status, re) => {
    imds.status = status;
    const err = await failure();
    expect(err.message).toMatch(re);
    expect(err.message).toContain(`GET ${imds.base}${TOKEN_PATH} answered`);
  });

  it.each([
    ['not JSON', '<html>gateway</html>', /malformed managed-identity token answer from http:\/\/127\.0\.0\.1:\d+\/metadata\/identity\/oauth2\/token\?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement\.azure\.com%2F: not JSON/],
    ['no access_token', '{"token_type":"Bearer"}', /malformed managed-identity token answer from .*: no access_token in the answer$/],
    ['empty', '', /: an empty answer, not JSON$/],
  ])('a malformed answer (%s) is refused, naming the URL', async (_n, body, re) => {
    imds.body = Buffer.from(body);
    expect((await failure()).message).toMatch(re);
  });

  it('a slow metadata service: gives up after the timeout, naming the URL', async () => {
    imds.slowMs = 1000;
    const t0 = Date.now();
    const err = await failure(attestor({}, { timeoutMs: 200 }));
    expect(err.message).toMatch(/GET http:\/\/127\.0\.0\.1:\d+\/metadata\/identity\/oauth2\/token\?.* the metadata service accepted the connection but did not answer within 200 ms/);
    expect(Date.now() - t0).toBeLessThan(900);
  });

});
