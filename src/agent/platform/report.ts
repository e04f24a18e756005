/**
 * The platform report (issue 16): one line saying what this node is, and a warning for a configured
 * node attestor that cannot work here. `platformReport` is pure (facts in, line and warnings out);
 * `startPlatformReport` runs the probe beside start-up and logs the result, and `validate` prints it.
 *
 * Line format (README "Platform report"): key=value pairs in this order, values quoted as the text
 * log quotes them:
 *   cloud=aws|gcp|azure|none|unknown virtualization=<hypervisor>|yes|not-detected|unknown
 *   container=docker|not-detected|unknown manufacturer=<DMI vendor>|unknown model=<DMI product>|unknown
 *   tpm=<device>|<device>(no-access)|none|unknown k8s_token=<files>|none|unknown node_attestor=<name>|none
 */
import type { Clock } from '../../clock.js';
import type { AgentConfig } from '../../config/types.js';
import type { Logger } from '../../telemetry/logger.js';
import { F } from '../../telemetry/names.js';
import { gatherFacts, type HostFacts, type HostProbe } from './facts.js';
import { FIT_RULES, probePaths } from './fit-rules.js';
import { describePaths, nodeProfile } from './profile.js';

/** The node attestor that will attest, with its plugin_data as written. */
export interface ConfiguredAttestor {
  readonly name: string;
  readonly data: Readonly<Record<string, unknown>>;
}

export interface PlatformWarning {
  readonly attestor: string;
  readonly message: string;
}

export interface PlatformReport {
  /** The line's fields, in order; also the structured log fields. */
  readonly fields: Readonly<Record<string, string>>;
  readonly line: string;
  readonly warnings: readonly PlatformWarning[];
}

/**
 * The attestor that attests: none in embedded mode (no server, no node attestation); join_token
 * when a token is given, whatever block is configured (spire-agent's precedence, catalog.ts);
 * otherwise the enabled NodeAttestor block.
 */
export function effectiveNodeAttestor(config: AgentConfig): ConfiguredAttestor | undefined {
  if (config.mode !== 'server') return undefined;
  const { joinToken, joinTokenFile } = config.server;
  if ((joinToken ?? '') !== '' || (joinTokenFile ?? '') !== '') return { name: 'join_token', data: {} };
  const p = config.plugins.find((x) => x.type === 'NodeAttestor' && x.enabled);
  return p ? { name: p.name, data: p.data } : undefined;
}

/** As the text log writes a value: quoted when it has spaces, quotes or '=', or is empty. */
function formatValue(s: string): string {
  return /[\s"=]/.test(s) || s === '' ? JSON.stringify(s) : s;
}

export function platformReport(facts: HostFacts, attestor: ConfiguredAttestor | undefined): PlatformReport {
  const node = nodeProfile(facts, probePaths(attestor));
  const fields = {
    cloud: node.cloud,
    virtualization: node.virtualization,
    container: node.container,
    manufacturer: node.manufacturer || 'unknown',
    model: node.model || 'unknown',
    tpm: describePaths(node.tpm, true),
    k8s_token: describePaths(node.k8sTokens, false),
    node_attestor: attestor?.name ?? 'none',
  };
  const warnings: PlatformWarning[] = [];
  const why = attestor ? FIT_RULES[attestor.name]?.check(node, attestor.data) : undefined;
  if (attestor && why !== undefined) {
    warnings.push({ attestor: attestor.name, message: `NodeAttestor "${attestor.name}" may not work on this node: ${why}; the agent tries it anyway` });
  }
  const line = Object.entries(fields)
    .map(([k, v]) => `${k}=${formatValue(v)}`)
    .join(' ');
  return { fields, line, warnings };
}

export interface PlatformReportDeps {
  readonly probe: HostProbe;
  readonly attestor: ConfiguredAttestor | undefined;
  readonly clock: Clock;
  readonly timeoutMs?: number;
}

/** Gathers the facts (bounded by timeoutMs) and builds the report; never throws. */
export async function runPlatformReport(d: PlatformReportDeps): Promise<PlatformReport> {
  const facts = await gatherFacts(d.probe, probePaths(d.attestor), { clock: d.clock, timeoutMs: d.timeoutMs });
  return platformReport(facts, d.attestor);
}

export const PLATFORM_REPORT_MSG = 'Platform report';

/** One info line with the fields, one warning per attestor that cannot work here. */
export function logPlatformReport(log: Logger, r: PlatformReport): void {
  log.info({ ...r.fields }, PLATFORM_REPORT_MSG);
  for (const w of r.warnings) log.warn({ plugin_name: w.attestor }, w.message);
}

/** The report running beside start-up; `stop` kills the probe and drops a report not yet logged. */
export interface RunningPlatformReport {
  readonly done: Promise<void>;
  stop(): void;
}

export function startPlatformReport(d: PlatformReportDeps & { readonly log: Logger }): RunningPlatformReport {
  let stopped = false;
  const log = d.log.child({ [F.subsystem]: 'platform_report' });
  const done = runPlatformReport(d).then(
    (r) => {
      if (!stopped) logPlatformReport(log, r);
    },
    (err: unknown) => {
      if (!stopped) log.warn({ [F.error]: (err as Error).message }, 'Platform report failed');
    },
  );
  return {
    done,
    stop: () => {
      stopped = true;
      d.probe.close();
    },
  };
}
