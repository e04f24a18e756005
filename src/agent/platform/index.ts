/**
 * The platform report as the agent starts it: loaded on demand (src/agent/agent.ts imports this
 * module dynamically), so node:child_process and the report's modules stay off the embedded start path.
 */
import type { Clock } from '../../clock.js';
import type { AgentConfig } from '../../config/types.js';
import type { Logger } from '../../telemetry/logger.js';
import type { HostProbe } from './facts.js';
import { createHostProbe, type HostProbeOptions } from './host-probe.js';
import { effectiveNodeAttestor, startPlatformReport, type RunningPlatformReport } from './report.js';

export interface AgentPlatformReportDeps {
  readonly config: AgentConfig;
  readonly log: Logger;
  readonly clock: Clock;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Tests inject answers; the real probe runs systeminformation in a child process. */
  readonly probe?: (o: HostProbeOptions) => HostProbe;
}

export function reportPlatform(d: AgentPlatformReportDeps): RunningPlatformReport {
  return startPlatformReport({ probe: (d.probe ?? createHostProbe)({ env: d.env }), attestor: effectiveNodeAttestor(d.config), clock: d.clock, log: d.log });
}
