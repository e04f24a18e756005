/**
 * The seam between the agent and a TPM 2.0, for what issue 15 brings: a hardware node attestor
 * (tpm_devid) and a key manager that keeps its key sealed by the TPM. Both receive a way to
 * open a TPM rather than opening /dev/tpmrm0 themselves, so tests hand in a simulator and the
 * agent decides which device and how many handles are open.
 *
 * The handle is the TPM's own interface as the kernel exposes it: one marshalled TPM2 command
 * in, one response out (TCG TPM 2.0 Part 3; /dev/tpmrm<N> is the kernel's resource manager,
 * which flushes transient objects when the handle closes). The TPM2 client that builds
 * commands on it is not here; it comes with the attestor.
 */
export interface TpmHandle {
  /** Sends one command (header included) and resolves with the TPM's whole response. */
  transmit(command: Uint8Array, signal?: AbortSignal): Promise<Uint8Array>;
  /** Releases the device; transient objects the TPM holds for this handle go with it. */
  close(): Promise<void>;
}

/** Opens the TPM at `devicePath` (e.g. /dev/tpmrm0); rejects with an error naming the device. */
export type OpenTpm = (devicePath: string) => Promise<TpmHandle>;
