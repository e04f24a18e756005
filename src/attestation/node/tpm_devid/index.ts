/**
 * tpm_devid: proves that the node holds a DevID key, certified by a CA the server trusts, inside
 * a TPM whose EK certificate comes from a maker the server trusts (spire-agent v1.13.3's
 * pkg/agent/plugin/nodeattestor/tpmdevid and the JSON of pkg/common/plugin/tpmdevid).
 *
 * When the attestor is created (spire-agent: Configure) the TPM path is auto-detected if none is
 * configured, and the three DevID files are read and checked to belong together, so a wrong path
 * stops the start naming the file. The files are read again at each attestation (a renewed DevID
 * certificate needs no restart). The TPM is opened for one attestation and left as found.
 */
import type { Clock } from '../../../clock.js';
import type { PluginContext } from '../../../config/plugin-catalog.js';
import { PluginDataReader } from '../../../config/plugin-data.js';
import type { PluginConfig } from '../../../config/types.js';
import type { Logger } from '../../../telemetry/logger.js';
import { TpmError } from '../../../tpm/errors.js';
import type { OpenTpm } from '../../../tpm/open-tpm.js';
import { autodetectTpmPath } from '../../../tpm/transport/open.js';
import { NodeAttestorError } from '../errors.js';
import type { AttestationStream, NodeAttestor } from '../types.js';
import { TPM_DEVID, type TpmDevidConfig } from './config.js';
import { TpmDevidError } from './errors.js';
import { DevIDFileError, loadDevIDMaterial } from './material.js';
import { DevIDSession } from './session.js';
import { encodeAttestationRequest, encodeChallengeResponse, parseChallengeRequest } from './wire.js';

export { TPM_DEVID, parseTpmDevidConfig, type TpmDevidConfig } from './config.js';
export { TpmDevidError, type TpmDevidErrorCode } from './errors.js';
export { loadDevIDMaterial, type DevIDMaterial } from './material.js';

export interface TpmDevidDeps {
  readonly log: Logger;
  readonly clock: Clock;
  readonly openTpm: OpenTpm;
  /** Where auto-detection looks (tests point it at a fixture directory). */
  readonly devDir?: string;
}

/** The device to use: the configured one, or the one tpmrm<N> (else tpm<N>) in /dev, as spire-agent picks it. */
export async function resolveDevicePath(configured: string | undefined, devDir = '/dev'): Promise<string> {
  if (configured !== undefined) return configured;
  try {
    return await autodetectTpmPath(devDir);
  } catch (err) {
    throw new TpmDevidError('tpm_devid_no_tpm', `tpm autodetection failed (tpm_device_path is not set, so ${devDir} was searched for tpmrm<N>, then tpm<N>): ${(err as Error).message}`, { cause: err });
  }
}

export async function createTpmDevidAttestor(c: TpmDevidConfig, deps: TpmDevidDeps): Promise<NodeAttestor> {
  const devicePath = await resolveDevicePath(c.devicePath, deps.devDir);
  await loadDevIDMaterial(c);
  return new TpmDevidAttestor(c, devicePath, deps);
}

/** For `validate`: the files as attestation would use them, each problem under its key with file and line. No TPM is opened. */
export async function verifyTpmDevidFiles(plugin: PluginConfig, c: TpmDevidConfig, ctx: PluginContext): Promise<void> {
  try {
    await loadDevIDMaterial(c);
  } catch (err) {
    if (!(err instanceof DevIDFileError)) throw err;
    const r = new PluginDataReader(plugin, { file: ctx.file, text: ctx.text, allowUnknown: true });
    r.problem(err.key, err.detail);
    r.finish();
  }
}

export class TpmDevidAttestor implements NodeAttestor {
  readonly name = TPM_DEVID;

  constructor(
    private readonly config: TpmDevidConfig,
    readonly devicePath: string,
    private readonly deps: TpmDevidDeps,
  ) {}

  async attest(stream: AttestationStream, signal: AbortSignal): Promise<void> {
    const m = await loadDevIDMaterial(this.config);
    const { log } = this.deps;
    log.info({ subject: m.leaf.subject.replace(/\n/g, ', '), issuer: m.leaf.issuer.replace(/\n/g, ', '), fingerprint: m.leaf.fingerprint.replace(/:/g, '').toLowerCase(), tpm: this.devicePath }, 'Attesting with DevID certificate');
    const tpm = await this.open();
    try {
      const session = await DevIDSession.start(tpm, m, this.config.passwords, log, signal);
      try {
        const request = await session.attestationRequest(signal);
        const challenge = await stream.sendAttestationData({ type: TPM_DEVID, payload: encodeAttestationRequest(request) });
        // The server always challenges; a server that issues the SVID without one has nothing to ask.
        if (challenge === undefined) return;
        const c = parseChallengeRequest(challenge);
        const signature = await session.signNonce(c.devID, signal);
        const secret = await session.activateCredential(c.credActivation.credential, c.credActivation.secret, signal);
        const next = await stream.sendChallengeResponse(encodeChallengeResponse(signature, secret));
        if (next !== undefined) throw new NodeAttestorError('node_attestor_unexpected_challenge', 'nodeattestor(tpm_devid): server issued a second challenge; tpm_devid answers one');
      } finally {
        await session.close();
      }
    } finally {
      await tpm.close();
    }
  }

  private async open() {
    try {
      return await this.deps.openTpm(this.devicePath, { log: this.deps.log, clock: this.deps.clock });
    } catch (err) {
      if (err instanceof TpmError && ['tpm_device_not_found', 'tpm_device_unsupported', 'tpm_io'].includes(err.code)) {
        throw new TpmDevidError('tpm_devid_no_tpm', `no TPM device at ${JSON.stringify(this.devicePath)} (${this.config.devicePath === undefined ? 'auto-detected' : 'tpm_device_path'}): ${err.message}`, { cause: err });
      }
      throw err;
    }
  }
}
