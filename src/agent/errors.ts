/**
 * Codes the agent's lifecycle throws with the base class (start-up refusals). Declared here, not
 * in agent.ts, so that the registry of codes stays a list of small declarations.
 */
export {};

declare module '../errors.js' {
  interface ErrorCodes {
    agent: 'no_workload_attestor' | 'package_json_missing';
  }
}
