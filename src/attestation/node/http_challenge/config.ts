/**
 * http_challenge's plugin_data, with spire-agent v1.13.3's keys and defaults
 * (pkg/agent/plugin/nodeattestor/httpchallenge): `hostname` (the OS host name when empty),
 * `agentname` ("default" when empty), `port` (0: any free port) and `advertised_port` (0: the
 * port actually listened on).
 *
 * Beyond spire-agent, values that no SPIRE server can ever accept are refused here, so the
 * operator learns of them at start instead of after every attestation retry: a host name with "/"
 * or ":" and an agent name with "." (SPIRE's shared httpchallenge code refuses them before it
 * fetches anything), "/" in an agent name (it would change the challenge URL's path), and ports
 * outside 0..65535. Server policy that varies with the server's version or config (its agent name
 * pattern, "localhost") is only warned about (see serverPolicyWarnings).
 */
import { hostname as osHostname } from 'node:os';
import { PluginDataReader, type PluginDataReaderOptions } from '../../../config/plugin-data.js';
import type { PluginContext } from '../../../config/plugin-catalog.js';
import type { PluginConfig } from '../../../config/types.js';

export const HTTP_CHALLENGE = 'http_challenge';
export const DEFAULT_AGENT_NAME = 'default';
const MAX_PORT = 65535;

export interface HttpChallengeConfig {
  /** The DNS name the server calls back on; also the last segment of the agent ID. */
  readonly hostname: string;
  /** Distinguishes agents that share one web server on a host (a path segment of the URL). */
  readonly agentName: string;
  /** The port to listen on; 0 picks a free one at each attestation. */
  readonly port: number;
  /** The port the server is told to call; 0 means the port listened on. */
  readonly advertisedPort: number;
}

export interface HttpChallengeConfigOptions extends PluginDataReaderOptions {
  /** The host's name, as spire-agent's os.Hostname(); a seam for tests. */
  readonly osHostname?: () => string;
}

export function parseHttpChallengeConfig(plugin: PluginConfig, opts: HttpChallengeConfigOptions = {}): HttpChallengeConfig {
  const r = new PluginDataReader(plugin, opts);
  let hostname = r.string('hostname', '');
  if (hostname === '') {
    hostname = (opts.osHostname ?? osHostname)();
    if (hostname === '') r.problem('hostname', 'unable to fetch hostname: the system reports none; set hostname to the DNS name the server can reach this node at');
  }
  const agentName = r.string('agentname', '') || DEFAULT_AGENT_NAME;
  const port = r.int('port', 0, { min: 0, max: MAX_PORT });
  // An unset advertised_port is the configured port, as in spire-agent (0 there too: the actual one).
  const advertisedPort = r.int('advertised_port', 0, { min: 0, max: MAX_PORT }) || port;

  for (const [ch, what] of [
    ['/', 'a slash'],
    [':', 'a colon'],
  ] as const) {
    if (hostname.includes(ch)) r.problem('hostname', `hostname ${JSON.stringify(hostname)} can not contain ${what}; the server calls http://<hostname>:<port>/..., so give a bare DNS name`);
  }
  if (/\s/.test(hostname)) r.problem('hostname', `hostname ${JSON.stringify(hostname)} can not contain white space`);
  if (agentName.includes('.')) r.problem('agentname', `agentname ${JSON.stringify(agentName)} can not contain a dot (SPIRE servers refuse it)`);
  if (agentName.includes('/')) r.problem('agentname', `agentname ${JSON.stringify(agentName)} can not contain a slash (it is one segment of the challenge URL's path)`);
  r.finish();
  return Object.freeze({ hostname, agentName, port, advertisedPort });
}

/**
 * What spire-server's http_challenge plugin refuses whatever its config: "localhost" as host
 * name, and agent names outside its pattern. v1.13.3's pattern (`^[a-zA-z]+[a-zA-Z0-9-]$`)
 * takes letters followed by exactly one letter, digit or dash ("web1", not "web12" or "a");
 * later servers take a letter then letters, digits and dashes. Both allow at most 32 characters.
 * Warnings, not errors: a later or patched server may accept what v1.13.3 refuses.
 */
export function serverPolicyWarnings(c: HttpChallengeConfig): string[] {
  const out: string[] = [];
  if (c.hostname === 'localhost') {
    out.push('hostname "localhost" is refused by spire-server ("you can not use localhost as a hostname"); set hostname to a DNS name of this node that the server resolves to it');
  }
  // The character range A-z in v1.13.3's pattern also spans [ \ ] ^ _ and `.
  const v1133 = /^[A-Za-z[\\\]^_`]+[A-Za-z0-9-]$/.test(c.agentName);
  const later = /^[A-Za-z][A-Za-z0-9-]*$/.test(c.agentName);
  if (c.agentName.length > 32 || !v1133 || !later) {
    out.push(
      `agentname ${JSON.stringify(c.agentName)} may be refused by spire-server ("agent name is not valid"): v1.13.3 takes letters followed by one letter, digit or dash (e.g. "default", "web1"), later versions a letter then letters, digits or dashes; at most 32 characters`,
    );
  }
  return out;
}

/**
 * For `validate`: what every spire-server refuses (host name "localhost") is reported as a problem
 * of `hostname`, with file and line. No port is bound: the agent may be running and holding it.
 * The agent name pattern differs between server versions, so it stays a warning of `run`.
 */
export function verifyHttpChallengeConfig(plugin: PluginConfig, c: HttpChallengeConfig, ctx: PluginContext): void {
  if (c.hostname !== 'localhost') return;
  const r = new PluginDataReader(plugin, { file: ctx.file, text: ctx.text, allowUnknown: true });
  r.problem('hostname', serverPolicyWarnings(c)[0] as string);
  r.finish();
}
