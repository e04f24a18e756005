/**
 * The seam between the agent and a TPM 2.0, for the plugins that need one (tpm_devid, the `tpm`
 * key manager). They receive a way to open a TPM rather than opening /dev/tpmrm0 themselves, so
 * the agent decides which device is used and tests hand in swtpm's socket (or a TPM that fails).
 * The client is loaded only when a plugin opens a TPM: an agent without one never loads it.
 */
import type { OpenOptions, TpmClient } from './client.js';

/** Opens the TPM at `path` (a device or a raw-command socket), or the one in /dev when undefined. */
export type OpenTpm = (path: string | undefined, opts?: OpenOptions) => Promise<TpmClient>;

export const openTpm: OpenTpm = async (path, opts) => (await import('./client.js')).TpmClient.open(path, opts);
