/**
 * A workload attestor: a name and `attest(pid) → selector values`. The agent
 * prefixes the name as the selector type ("uid:1000" from "unix" → unix:uid:1000).
 * "Not applicable" (e.g. docker for a non-container process) is success with [].
 */
export interface WorkloadAttestor {
  readonly name: string;
  attest(pid: number, signal: AbortSignal): Promise<string[]>;
  close?(): Promise<void>;
}
