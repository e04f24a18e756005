/**
 * Finding and opening the TPM as spire-agent's tpm_devid does: with no `tpm_device_path`, exactly
 * one /dev/tpmrm<N> (the kernel's resource manager), else exactly one /dev/tpm<N>; more than one
 * of a kind is an error rather than a guess. A configured path may be a character device or a
 * Unix socket speaking raw TPM 2.0 commands (go-tpm's OpenTPM accepts both).
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { TpmError } from '../errors.js';
import { DeviceTransport } from './device.js';
import { SocketTransport } from './socket.js';
import type { TpmTransport } from './types.js';

// Unanchored at the start, as spire-agent's patterns are, so both pick the same device.
const DEVICE_PATTERNS = [/tpmrm\d+$/, /tpm\d+$/];

export async function autodetectTpmPath(devDir = '/dev'): Promise<string> {
  let names: string[];
  try {
    names = (await readdir(devDir)).sort();
  } catch (err) {
    throw new TpmError('tpm_device_not_found', `tpm: cannot list ${devDir} to find a TPM: ${(err as Error).message}`, { cause: err });
  }
  for (const pattern of DEVICE_PATTERNS) {
    const found = names.filter((n) => pattern.test(n));
    if (found.length > 1) {
      throw new TpmError('tpm_device_ambiguous', `tpm: more than one possible TPM in ${devDir} (${found.join(', ')}); set tpm_device_path to the one to use`);
    }
    if (found.length === 1) return join(devDir, found[0]!);
  }
  throw new TpmError('tpm_device_not_found', `tpm: no TPM found in ${devDir} (no tpmrm<N> or tpm<N>); load the TPM driver, or set tpm_device_path (a TPM device or a TPM simulator's socket)`);
}

export async function openTransport(path: string | undefined, devDir = '/dev'): Promise<TpmTransport> {
  const target = path ?? (await autodetectTpmPath(devDir));
  let info;
  try {
    info = await stat(target);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const code = e.code === 'ENOENT' ? 'tpm_device_not_found' : 'tpm_io';
    throw new TpmError(code, `tpm: cannot use ${target}: ${e.message}`, { cause: err });
  }
  if (info.isCharacterDevice()) return DeviceTransport.open(target);
  if (info.isSocket()) return new SocketTransport(target);
  throw new TpmError('tpm_device_unsupported', `tpm: ${target} is neither a character device nor a Unix socket; tpm_device_path must name a TPM (/dev/tpmrm0) or the socket of a TPM simulator that speaks raw TPM 2.0 commands (swtpm)`);
}
