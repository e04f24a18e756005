/**
 * A fresh workload process: connects to the Workload API and times the first
 * X.509-SVID response. Prints one JSON line: { ms, sinceStartMs, svids }.
 * argv: <socket path>
 */
const { WorkloadAPIClient } = await import('../../dist/src/sdk/index.js');
const client = new WorkloadAPIClient({ address: `unix://${process.argv[2]}` });
const t0 = performance.now();
const res = await client.fetchRawX509SVID({ timeoutMs: 20_000 });
const t1 = performance.now();
client.close();
console.log(JSON.stringify({ ms: t1 - t0, sinceStartMs: t1, svids: res.svids.length }));
