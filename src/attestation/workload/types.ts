import { SpiffeAgentError, type ErrorCodes } from '../../errors.js';

/**
 * A workload attestor: a name and `attest(pid) → selector values`. The agent
 * prefixes the name as the selector type ("uid:1000" from "unix" → unix:uid:1000).
 * "Not applicable" (e.g. docker for a non-container process) is success with [].
 */
export interface WorkloadAttestor {
  readonly name: string;
  /**
   * True when attest() never reads its signal (it reads only /proc): a caller then need not make
   * an AbortController per call for it, which costs ~2 % of the agent's CPU per connection.
   */
  readonly ignoresSignal?: boolean;
  attest(pid: number, signal: AbortSignal): Promise<string[]>;
  close?(): Promise<void>;
}

declare module '../../errors.js' {
  interface ErrorCodes {
    workloadRefused: 'workload_too_large';
  }
}

/**
 * An attestor's verdict that this workload cannot be attested and that asking again
 * will not change it (its binary is over workload_size_limit, say), as opposed to a
 * transient failure. The caller gets a status that tells clients not to retry.
 */
export class WorkloadRefusedError extends SpiffeAgentError<ErrorCodes['workloadRefused']> {}
