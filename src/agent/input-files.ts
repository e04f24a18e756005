/**
 * What `spiffe-agent validate` checks beyond agent.conf itself: the files `run` reads at start and
 * refuses to start without, read and parsed by the same code. The registration entries file (every
 * problem, with its entry and line), the federated bundle files and join_token_file. Each plugin's own files (the
 * kubelet CA, key and certificate files) are its catalog entry's `verify`, run by checkPluginConfigs. Files `run` tolerates stay tolerated: an entries file that does not exist yet
 * is a note, not a problem (the agent serves no entries until it appears).
 */
import { parseEntriesFile, EntriesFileError } from '../authority/embedded/entries-file.js';
import { resolveJoinToken } from '../attestation/node/catalog.js';
import type { ConfigProblem } from '../config/errors.js';
import type { AgentConfig } from '../config/types.js';
import { SpiffeAgentError } from '../errors.js';
import { INPUT_LIMITS, InputFileError, readBoundedFile } from '../storage/bounded-file.js';
import { problemsIn } from './run-plugins.js';
import { workloadApiAddressProblem } from './workload-api-bundle.js';

export interface InputFilesReport {
  readonly problems: ConfigProblem[];
  /** Things `run` accepts but an operator may not expect (a missing entries file). */
  readonly notes: string[];
}

/** `text`: the config file's text, which the caller has read already, for the problems' lines. */
export async function checkInputFiles(config: AgentConfig, text: string | undefined): Promise<InputFilesReport> {
  const problems: ConfigProblem[] = [];
  const notes: string[] = [];
  const source = config.source;
  // Lines for the problems below, which name keys of the config file.
  const at = problemsIn(source, text);
  if (config.mode === 'embedded') {
    const ea = config.embeddedAuthority;
    if (ea.entriesFile !== undefined) await checkEntries(ea.entriesFile, config.agent.trustDomain, problems, notes);
    for (const [td, file] of Object.entries(ea.federatedBundles)) {
      const key = `embedded_authority.federated_bundles.${td}`;
      // The name itself is checked with the rest of the config; being the agent's own is refused at start.
      if (td === config.agent.trustDomain) {
        problems.push(at(key, "is this agent's own trust domain; its bundle is the embedded CA's"));
        continue;
      }
      try {
        const text = await readBoundedFile(file, { maxBytes: INPUT_LIMITS.bundle, what: `federated bundle of "${td}"` });
        // Loaded only when a bundle is configured, as at run (it brings the certificate parsers).
        (await import('../authority/embedded/federated-bundle-file.js')).parseBundleFile(td, file, text);
      } catch (err) {
        if (!(err instanceof SpiffeAgentError)) throw err;
        problems.push(at(key, err.message.replace(/^(input|federated-bundles): /, '')));
      }
    }
  }
  if (config.mode === 'server' && config.server.joinTokenFile !== undefined) {
    // run reads it before attesting and refuses to start without a token in it.
    try {
      await resolveJoinToken({ joinTokenFile: config.server.joinTokenFile });
    } catch (err) {
      if (!(err instanceof SpiffeAgentError)) throw err;
      problems.push(at('agent.join_token_file', err.message.replace(/^nodeattestor\(join_token\): /, '')));
    }
  }
  const wl = config.mode === 'server' ? config.server.trustBundleSpiffeWorkloadApi : undefined;
  const wlProblem = wl === undefined ? undefined : workloadApiAddressProblem(wl);
  if (wlProblem) problems.push(at('agent.trust_bundle_spiffe_workload_api', wlProblem));
  return { problems, notes };
}

async function checkEntries(file: string, trustDomain: string, problems: ConfigProblem[], notes: string[]): Promise<void> {
  let text: string;
  try {
    text = await readBoundedFile(file, { maxBytes: INPUT_LIMITS.entries, what: 'registration entries file' });
  } catch (err) {
    if (err instanceof InputFileError && err.code === 'input_not_found') {
      notes.push(`${file}: the registration entries file does not exist; the agent will serve no entries until it appears`);
      return;
    }
    if (!(err instanceof SpiffeAgentError)) throw err;
    problems.push({ file, key: '', message: err.message.replace(/^input: /, '') });
    return;
  }
  try {
    parseEntriesFile(file, text, trustDomain);
  } catch (err) {
    if (!(err instanceof EntriesFileError)) throw err;
    for (const p of err.problems) problems.push({ file, ...(p.line ? { line: p.line } : {}), key: p.path, message: p.message });
    if (err.total > err.problems.length) problems.push({ file, key: '', message: `... and ${err.total - err.problems.length} more problems` });
  }
}
