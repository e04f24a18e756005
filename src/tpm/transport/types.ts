/** How a command reaches a TPM: a character device (/dev/tpmrm0) or a Unix socket (swtpm). */
export interface TpmTransport {
  /** "/dev/tpmrm0 (device)", for messages. */
  readonly description: string;
  /**
   * Sends one whole command and resolves with one whole response whose header size matches what
   * arrived. Rejects with a TpmError: tpm_io, tpm_timeout (when `signal` aborts) or
   * tpm_malformed_response. `cc` only names the command in messages.
   */
  send(command: Buffer, cc: number, signal: AbortSignal): Promise<Buffer>;
  close(): Promise<void>;
}
