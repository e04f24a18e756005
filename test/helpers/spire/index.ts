/**
 * Harness for the server-mode interop suite: a real spire-server v1.13.3, the reference
 * spire-agent v1.13.3 and our spiffe-agent from one agent.conf writer, real go-spiffe workloads.
 * See test/interop/README.md ("Server mode") for how to run it.
 */
export * from './binaries.js';
export * from './proc.js';
export * from './server.js';
export * from './agents.js';
export * from './workload.js';
export * from './x509pop.js';
export * from './datastore.js';
export * from './json-logs.js';
export * from './debug-api.js';
