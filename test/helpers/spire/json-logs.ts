/**
 * The records of an agent started with `log_format = "json"` in the shared agent.conf: both
 * spire-agent (logrus) and spiffe-agent write one JSON object per line with level ("warning" for
 * warnings in both), msg and the fields, so a test can compare what each logged field by field.
 */
import type { AgentHandle } from './agents.js';

export const JSON_LOGS = '    log_format = "json"';

export function jsonLogs(agent: AgentHandle): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const l of agent.daemon.lines) {
    if (!l.startsWith('{')) continue;
    try {
      out.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      /* not a record (a line cut by the ring buffer) */
    }
  }
  return out;
}
