import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { MetricsServer, NO_METRICS, PrometheusMetrics, rpcKey, statusName } from '../../../src/telemetry/metrics/index.js';
import { nullLogger } from '../../../src/telemetry/logger.js';
import { allowedByPrefix, snakeKey } from '../../../src/telemetry/metrics/names.js';

const OPTS = { metricPrefix: 'spire_agent', enableHostnameLabel: false, allowedPrefixes: [], blockedPrefixes: [] };

describe('metric names', () => {
  it.each([
    ['/SpiffeWorkloadAPI/FetchX509SVID', 'rpc.workload_api.fetch_x509svid'],
    ['/SpiffeWorkloadAPI/FetchX509Bundles', 'rpc.workload_api.fetch_x509_bundles'],
    ['/SpiffeWorkloadAPI/FetchJWTSVID', 'rpc.workload_api.fetch_jwtsvid'],
    ['/SpiffeWorkloadAPI/FetchJWTBundles', 'rpc.workload_api.fetch_jwt_bundles'],
    ['/SpiffeWorkloadAPI/ValidateJWTSVID', 'rpc.workload_api.validate_jwtsvid'],
    ['/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets', 'rpc.sds.v3.stream_secrets'],
    ['/grpc.health.v1.Health/Check', 'rpc.health.check'],
  ])('%s → %s (spire-agent\'s key)', (path, key) => {
    expect(rpcKey(path).join('.')).toBe(key);
  });

  it('snake-cases as spire does', () => {
    // spire's rule splits this one oddly, so spire names it by hand; so do we.
    expect(snakeKey('SubscribeToX509SVIDs')).toBe('subscribe_to_x509svi_ds');
    expect(rpcKey('/spire.api.agent.delegatedidentity.v1.DelegatedIdentity/SubscribeToX509SVIDs').join('.')).toBe('rpc.delegated_identity.subscribe_to_x509_svids');
    expect(snakeKey('GetAuthorizedEntries')).toBe('get_authorized_entries');
  });

  it('filters by the longest matching prefix; no match is allowed (go-metrics FilterDefault)', () => {
    expect(allowedByPrefix('spire_agent.rpc.health.check', ['spire_agent.rpc'], ['spire_agent.rpc.health'])).toBe(false);
    expect(allowedByPrefix('spire_agent.rpc.workload_api.x', ['spire_agent.rpc'], ['spire_agent.rpc.health'])).toBe(true);
    expect(allowedByPrefix('spire_agent.started', ['spire_agent.rpc'], [])).toBe(true);
    expect(allowedByPrefix('spire_agent.rpc.x', [], ['spire_agent.rpc'])).toBe(false);
  });

  it('names gRPC codes as Go does', () => {
    expect(statusName({ code: 7 })).toBe('PermissionDenied');
    expect(statusName(new Error('x'))).toBe('Unknown');
  });
});

describe('PrometheusMetrics', () => {
  it('exposes counters, gauges, call counters with elapsed_time summaries, and ours under spiffe_agent_', async () => {
    const m = new PrometheusMetrics(OPTS);
    const call = m.call(['rpc', 'workload_api', 'fetch_x509svid']);
    call.done('OK', 2);
    call.done('OK', 4);
    call.done('PermissionDenied', 1);
    m.counter(['workload_api', 'connection']).inc();
    m.gauge(['workload_api', 'connections']).set(3);
    m.own.counter('audit_decisions', 'help', ['method', 'decision']).inc('FetchX509SVID', 'granted');
    const { body } = await m.scrape();
    expect(body).toContain('spire_agent_rpc_workload_api_fetch_x509svid{status="OK"} 2');
    expect(body).toContain('spire_agent_rpc_workload_api_fetch_x509svid{status="PermissionDenied"} 1');
    expect(body).toContain('# TYPE spire_agent_rpc_workload_api_fetch_x509svid_elapsed_time summary');
    expect(body).toContain('spire_agent_rpc_workload_api_fetch_x509svid_elapsed_time_sum{status="OK"} 6');
    expect(body).toContain('spire_agent_rpc_workload_api_fetch_x509svid_elapsed_time{quantile="0.99",status="OK"}');
    expect(body).toContain('spire_agent_workload_api_connection 1');
    expect(body).toContain('spire_agent_workload_api_connections 3');
    expect(body).toContain('spiffe_agent_audit_decisions{method="FetchX509SVID",decision="granted"} 1');
    expect(body).toContain('process_resident_memory_bytes');
  });

  it('keeps one registry per instance: two agents in one process do not share counts', async () => {
    const a = new PrometheusMetrics(OPTS);
    const b = new PrometheusMetrics(OPTS);
    a.counter(['x']).inc();
    a.counter(['x']).inc();
    expect((await a.scrape()).body).toContain('spire_agent_x 2');
    expect((await b.scrape()).body).not.toContain('spire_agent_x');
  });

  it('applies MetricPrefix, the host label, prefix filters and scrape hooks', async () => {
    const m = new PrometheusMetrics({ metricPrefix: 'node', enableHostnameLabel: true, allowedPrefixes: [], blockedPrefixes: ['node.rpc.health'] });
    m.call(['rpc', 'health', 'check']).done('OK', 1);
    let n = 0;
    const g = m.gauge(['uptime_in_ms']);
    m.onScrape(() => g.set(++n));
    const { body } = await m.scrape();
    expect(body).not.toContain('rpc_health');
    expect(body).toContain(`node_uptime_in_ms{host="${hostname()}"} 1`);
  });

  it('no-op metrics accept every call and report disabled', () => {
    expect(NO_METRICS.enabled).toBe(false);
    NO_METRICS.call(['a']).done('OK', 1);
    NO_METRICS.own.gauge('g', 'h').set(1);
  });
});

describe('MetricsServer', () => {
  it('serves the exposition on any path and refuses to start on a port in use, saying which', async () => {
    const m = new PrometheusMetrics(OPTS);
    m.counter(['started']).inc();
    const srv = new MetricsServer(m, { host: '127.0.0.1', port: 0 }, nullLogger);
    const { port } = await srv.listen();
    try {
      const res = await fetch(`http://127.0.0.1:${port}/anything`);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('spire_agent_started 1');
      const second = new MetricsServer(m, { host: '127.0.0.1', port }, nullLogger);
      await expect(second.listen()).rejects.toMatchObject({ code: 'metrics_listen_failed', message: expect.stringMatching(new RegExp(`127\\.0\\.0\\.1:${port} .*EADDRINUSE.*telemetry\\.Prometheus\\.port`)) });
    } finally {
      await srv.close();
    }
  });
});
