/**
 * gcp_iit against the fake GCE metadata server (test/helpers/cloud/gcp-metadata.ts): the one GET
 * spire-agent v1.13.3 makes (path, audience=spire-gcp-node-attestor&format=full, Metadata-Flavor)
 * and the token bytes as the payload. Compared with spire-agent's in
 * test/interop/server/cloud-gcp-iit.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseGcpIitConfig } from '../../../../src/attestation/node/gcp_iit/config.js';
import { GcpIitAttestor, identityTokenURL } from '../../../../src/attestation/node/gcp_iit/index.js';
import { NODE_ATTESTORS } from '../../../../src/attestation/node/catalog.js';
import type { PluginConfig } from '../../../../src/config/types.js';
import { nullLogger } from '../../../../src/telemetry/logger.js';
import { FakeGCEMetadata } from '../../../helpers/cloud/gcp-metadata.js';
import { failureOf } from '../../../helpers/failure.js';

const plugin = (data: Record<string, unknown>): PluginConfig => ({ type: 'NodeAttestor', name: 'gcp_iit', enabled: true, data, dataFile: undefined, path: 'plugins.NodeAttestor.gcp_iit' });
let gce: FakeGCEMetadata;
beforeEach(async () => {
  gce = await FakeGCEMetadata.start();
});
afterEach(() => gce.close());

const attestor = (data: Record<string, unknown> = { identity_token_host: gce.host }, timeoutMs = 2000) => new GcpIitAttestor(parseGcpIitConfig(plugin(data)), { log: nullLogger, timeoutMs });
const failure = (a = attestor()) => failureOf(a.payload(new AbortController().signal));

describe('gcp_iit', () => {
  it('defaults: metadata.google.internal and the default service account', () => {
    expect(identityTokenURL(parseGcpIitConfig(plugin({})))).toBe(
      'http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/identity?audience=spire-gcp-node-attestor&format=full',
    );
    expect(() => parseGcpIitConfig(plugin({ service_acount: 'x' }))).toThrow(/service_acount/);
    expect(NODE_ATTESTORS.names).toContain('gcp_iit');
  });

  it('asks with Metadata-Flavor: Google and sends the token bytes as they came', async () => {
    const payload = await attestor({ identity_token_host: gce.host, service_account: 'node@p.iam.gserviceaccount.com' }).payload(new AbortController().signal);
    expect(Buffer.from(payload).equals(gce.token)).toBe(true);
    expect(gce.requests).toEqual([{ path: '/computeMetadata/v1/instance/service-accounts/node@p.iam.gserviceaccount.com/identity?audience=spire-gcp-node-attestor&format=full', flavor: 'Google' }]);
  });

  it('no metadata server: says so, naming it', async () => {
    const host = gce.host;
    await gce.close();
    expect((await failure(attestor({ identity_token_host: host }))).message).toContain(`nodeattestor(gcp_iit): no metadata service at http://${host}: this node is not on Google Cloud`);
    gce = await FakeGCEMetadata.start();
  });

  it.each([
    [401, /answered HTTP 401, want 200: the metadata server refused/],
    [403, /answered HTTP 403, want 200: the metadata server refused/],
    [404, /answered HTTP 404, want 200: no service account "default"/],
    [500, /answered HTTP 500, want 200$/],
  ])('HTTP %i is refused, naming the URL', async (status, re) => {
    gce.status = status;
    const err = await failure();
    expect(err.message).toMatch(re);
    expect(err.message).toContain('/computeMetadata/v1/instance/service-accounts/default/identity?audience=spire-gcp-node-attestor&format=full');
  });

  it('a slow server: gives up after the timeout; an empty token is refused', async () => {
    gce.slowMs = 1000;
    expect((await failure(attestor(undefined, 200))).message).toMatch(/no answer within 200 ms/);
    gce.slowMs = 0;
    gce.token = Buffer.alloc(0);
    expect((await failure()).message).toMatch(/empty identity token/);
  });

  it.each([
    ['an HTML page', '<html>proxy error</html>', /not a JWT \(1 dot-separated parts, want 3\)$/],
    ['two parts', 'eyJhbGciOiJSUzI1NiJ9.e30', /not a JWT \(2 dot-separated parts, want 3\)$/],
    ['a header that is not JSON', 'bm90IGpzb24.e30.c2ln', /not a JWT \(its header is not JSON\)$/],
    ['a header without alg', `${Buffer.from('{"typ":"JWT"}').toString('base64url')}.e30.c2ln`, /not a JWT \(its header has no "alg"\)$/],
    ['white space inside', 'eyJhbGciOiJSUzI1NiJ9.e30 .c2ln', /not a JWT \(a part is not base64url text\)$/],
  ])('a malformed token (%s) is refused, naming the URL, never quoting it', async (_n, body, re) => {
    gce.token = Buffer.from(body);
    const err = await failure();
    expect(err.message).toMatch(re);
    expect(err.message).toMatch(/malformed identity token from http:\/\/127\.0\.0\.1:\d+\/computeMetadata\/v1\/instance\/service-accounts\/default\/identity\?audience=spire-gcp-node-attestor&format=full: /);
    expect(err.message).not.toContain(body);
  });
});
