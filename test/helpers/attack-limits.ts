/**
 * Limits the attack tests on the agent's own listeners share (test/integration/attack-h2.test.ts,
 * attack-http-listeners.test.ts): the agent's open-file limit and how far above its starting
 * memory it may settle once an attack is over.
 */

/** The agent's open-file limit: running it out of descriptors is within the attacker's reach. */
export const NOFILE = 1024;
/** RSS is read in KiB. */
export const MiB = 1024;
/**
 * What "back at baseline" allows over the agent's anonymous RSS at start (about 20 MiB): after
 * each attack 10–23 MiB above it were seen, going up and down from one attack to the next (JIT
 * code, V8's heap sizing), not growing; a leak of what an attack held (thousands of streams and
 * connections) would be far more. attack-h2's rapid-reset-full (100,000 complete requests, the heap
 * peaking at 130–136 MiB) settled 24–39 MiB above it in CI runs: V8 keeps part of the heap it grew
 * to, and 45 s of quiet do not make it give that back. Before the fix it guards, that attack took
 * gigabytes.
 */
export const RSS_SLACK = 48 * MiB;
