/**
 * Built-in node attestors: one literal list, chosen by name from plugins { NodeAttestor "<name>" },
 * in the shape all three catalogs share (src/config/plugin-catalog.ts). The agent builds the
 * attestor from here with the config file's text (so problems carry file and line) and what a
 * hardware attestor needs (clock, logger, a way to open a TPM), and hands it to the session.
 *
 * spire-agent's precedence: a join token (join_token, join_token_file or -joinToken) selects the
 * built-in join_token attestor whatever NodeAttestor block is configured; otherwise the one
 * configured NodeAttestor attests.
 */
import type { Clock } from '../../clock.js';
import { PluginCatalog, builtIn, type PluginContext } from '../../config/plugin-catalog.js';
import { PluginDataReader } from '../../config/plugin-data.js';
import type { PluginConfig } from '../../config/types.js';
import type { OpenTpm } from '../../tpm/open-tpm.js';
import { INPUT_LIMITS, readBoundedFile } from '../../storage/bounded-file.js';
import type { Logger } from '../../telemetry/logger.js';
import { F } from '../../telemetry/names.js';
import { NodeAttestorError } from './errors.js';
import { JOIN_TOKEN, JoinTokenAttestor } from './join-token/index.js';
import { HTTP_CHALLENGE, parseHttpChallengeConfig, verifyHttpChallengeConfig } from './http_challenge/config.js';
import { SSHPOP, parseSshpopConfig } from './sshpop/config.js';
import { TPM_DEVID, parseTpmDevidConfig } from './tpm_devid/config.js';
import { AWS_IID, parseAwsIidConfig } from './aws_iid/config.js';
import { GCP_IIT, parseGcpIitConfig } from './gcp_iit/config.js';
import { AZURE_MSI, parseAzureMsiConfig } from './azure_msi/config.js';
import { K8S_PSAT, parseK8sPsatConfig } from './k8s_psat/config.js';
import type { NodeAttestor } from './types.js';
import { createX509popAttestor, loadX509popMaterial, parseX509popConfig } from './x509pop/index.js';

/** What a node attestor may use besides its plugin_data. */
export interface NodeAttestorDeps {
  readonly log: Logger;
  readonly clock: Clock;
  /** How a TPM plugin opens its TPM (src/tpm/open-tpm.ts); the agent passes the real one, tests a simulator's. */
  readonly openTpm: OpenTpm;
}

/** agent {} keys (and the -joinToken flag) that pick the join_token attestor over the configured one. */
export interface JoinTokenInput {
  /** agent.join_token (or -joinToken). */
  readonly joinToken?: string;
  /** agent.join_token_file, read at start as spire-agent does. */
  readonly joinTokenFile?: string;
}

export const NODE_ATTESTORS = new PluginCatalog<NodeAttestorDeps, NodeAttestor>('NodeAttestor', {
  // The join_token block has no keys; without a token it fails as spire-agent's does.
  [JOIN_TOKEN]: builtIn({
    configure: (p, c) => new PluginDataReader(p, c).finish(),
    create: () => new JoinTokenAttestor(''),
  }),
  x509pop: builtIn({
    configure: (p, c) => parseX509popConfig(p, c),
    // validate reads the key and certificates attestation would read, and checks they are a pair.
    verify: async (_p, config) => void (await loadX509popMaterial(config)),
    create: (config) => createX509popAttestor(config),
  }),
  // Its code (SSH wire formats, OpenSSH keys) loads only when agent.conf configures it.
  [SSHPOP]: builtIn({
    configure: (p, c) => parseSshpopConfig(p, c),
    verify: async (p, config, c, clock) => (await import('./sshpop/index.js')).verifySshpopFiles(p, config, c, clock),
    create: async (config, d) => (await import('./sshpop/index.js')).createSshpopAttestor(config, d),
  }),
  // Its code (the DevID session, and through it the TPM client) loads only when configured.
  [TPM_DEVID]: builtIn({
    configure: (p, c) => parseTpmDevidConfig(p, c),
    verify: async (p, config, c) => (await import('./tpm_devid/index.js')).verifyTpmDevidFiles(p, config, c),
    create: async (config, d) => (await import('./tpm_devid/index.js')).createTpmDevidAttestor(config, d),
  }),
  // Its code (the HTTP listener) loads only when agent.conf configures it; `validate` binds no port.
  [HTTP_CHALLENGE]: builtIn({
    configure: (p, c) => parseHttpChallengeConfig(p, c),
    verify: (p, config, c) => Promise.resolve(verifyHttpChallengeConfig(p, config, c)),
    create: async (config, d) => (await import('./http_challenge/index.js')).createHttpChallengeAttestor(config, d),
  }),
  // Reads the EC2 metadata service at attestation; its code loads only when configured.
  [AWS_IID]: builtIn({
    configure: (p, c) => parseAwsIidConfig(p, { ...c.env }, { file: c.file, text: c.text }),
    create: async (config, d) => (await import('./aws_iid/index.js')).createAwsIidAttestor(config, { log: d.log }),
  }),
  [GCP_IIT]: builtIn({
    configure: (p, c) => parseGcpIitConfig(p, { file: c.file, text: c.text }),
    create: async (config, d) => (await import('./gcp_iit/index.js')).createGcpIitAttestor(config, { log: d.log }),
  }),
  // Asks the fixed Azure IMDS address at attestation; its code loads only when configured.
  [AZURE_MSI]: builtIn({
    configure: (p, c) => parseAzureMsiConfig(p, { file: c.file, text: c.text }),
    create: async (config, d) => (await import('./azure_msi/index.js')).createAzureMsiAttestor(config, { log: d.log }),
  }),
  // The token is read at each attestation, not at start (the kubelet rotates it), so validate reads no file.
  [K8S_PSAT]: builtIn({
    configure: (p, c) => parseK8sPsatConfig(p, { file: c.file, text: c.text }),
    create: async (config, d) => (await import('./k8s_psat/index.js')).createK8sPsatAttestor(config, { log: d.log, clock: d.clock }),
  }),
});

/** For `validate`: a NodeAttestor block's name and plugin_data, and the files of those that load files at start. */
export function checkNodeAttestorConfig(p: PluginConfig, ctx: PluginContext, clock: Clock): Promise<void> {
  return NODE_ATTESTORS.check(p, ctx, clock);
}

/** The join token the agent should use, if any (join_token_file is read and trimmed, as spire-agent does). */
export async function resolveJoinToken(input: JoinTokenInput): Promise<string | undefined> {
  if (input.joinTokenFile !== undefined && input.joinTokenFile !== '') {
    let text: string;
    try {
      text = await readBoundedFile(input.joinTokenFile, { maxBytes: INPUT_LIMITS.token, what: 'join_token_file' });
    } catch (err) {
      throw new NodeAttestorError('node_attestor_config', `nodeattestor(join_token): unable to read join token file ${JSON.stringify(input.joinTokenFile)}: ${(err as Error).message}`, { cause: err });
    }
    const token = text.trim();
    if (token === '') throw new NodeAttestorError('node_attestor_config', `nodeattestor(join_token): join token file ${JSON.stringify(input.joinTokenFile)} is empty`);
    return token;
  }
  return input.joinToken !== undefined && input.joinToken !== '' ? input.joinToken : undefined;
}

/** What a config without exactly one of these is told to add (run and validate). */
export const NODE_ATTESTOR_EXAMPLE = 'NodeAttestor "join_token" { plugin_data {} }';

/** The agent's one node attestor, built as `run` needs it. */
export async function createNodeAttestor(plugins: readonly PluginConfig[], ctx: PluginContext, deps: NodeAttestorDeps & JoinTokenInput): Promise<NodeAttestor> {
  const p = NODE_ATTESTORS.exactlyOne(plugins, ctx, 'node_attestor_count', NODE_ATTESTOR_EXAMPLE);
  const token = await resolveJoinToken(deps);
  if (token !== undefined) {
    // Still check the configured block (its plugin_data and the files it loads), as `validate`
    // does, so a typo or a missing file is reported even when the token wins.
    await NODE_ATTESTORS.check(p, ctx, deps.clock);
    return new JoinTokenAttestor(token);
  }
  const { log, clock, openTpm } = deps;
  return NODE_ATTESTORS.create(p, ctx, { log: log.child({ [F.subsystem]: 'node_attestor', plugin_name: p.name }), clock, openTpm });
}
