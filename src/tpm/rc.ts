/**
 * Decoding a TPM_RC into what went wrong and where (TCG TPM 2.0 Library, Part 2, "TPM_RC").
 * Format one (bit 7 set) names the parameter, handle or session at fault; format zero is a
 * plain error, or a warning when the S bit is set. Bits 16-23 are a TSS "layer": a code from
 * the software between us and the TPM (a resource manager), not from the TPM itself.
 */
import { lookupFormat0, lookupFormat1, lookupWarning, RC_FMT1, RC_VER1, RC_WARN } from './rc-table.js';

export type RCFormat = 'format-0' | 'format-1' | 'warning' | 'vendor' | 'tpm-1.2' | 'layer';

export interface DecodedRC {
  readonly rc: number;
  readonly format: RCFormat;
  /** "TPM_RC_AUTH_FAIL"; "TPM_RC_0x0abc" for a code the spec does not list. */
  readonly name: string;
  /** The code without its position: TPM_RC_AUTH_FAIL is 0x08e whichever session failed. */
  readonly base: number;
  /** The TPM's reason in words. */
  readonly meaning: string;
  /** 1-based; set on format-one codes, one of the three. */
  readonly parameter?: number;
  readonly handle?: number;
  readonly session?: number;
  /** The TSS layer (bits 16-23) when the code did not come from the TPM. */
  readonly layer?: number;
}

/**
 * TSS2 layer numbers a client over /dev/tpmrm0 or a user-space resource manager can meet. Layer 11
 * (TSS2_RESMGR_TPM_RC_LAYER) carries a TPM-format code the resource manager answered for the TPM;
 * Linux's /dev/tpmrm uses it, e.g. when a context it swapped out cannot be loaded back.
 */
const LAYERS: Readonly<Record<number, string>> = {
  10: 'the TPM transport (TCTI)',
  11: 'the resource manager, on behalf of the TPM',
  12: 'the resource manager',
};

function hex(n: number, width = 3): string {
  return `0x${n.toString(16).padStart(width, '0')}`;
}

export function decodeRC(rc: number): DecodedRC {
  rc >>>= 0;
  const layer = rc >>> 16;
  if (layer !== 0) {
    const inner = rc & 0xffff;
    const who = LAYERS[layer] ?? `software layer ${layer}`;
    // The resource manager's own TPM-format codes read like the TPM's, so decode them as such.
    const innerDecoded = layer === 11 && inner <= 0xfff ? decodeRC(inner) : undefined;
    return {
      rc,
      format: 'layer',
      name: innerDecoded ? innerDecoded.name : `TSS2_RC ${hex(rc, 8)}`,
      base: innerDecoded ? innerDecoded.base : inner,
      meaning: innerDecoded ? `${innerDecoded.meaning} (from ${who})` : `an error from ${who}, code ${hex(inner, 4)}, not from the TPM`,
      layer,
    };
  }
  if (rc > 0xfff) return unknown(rc, 'format-0', 'a response code with reserved bits set');
  if (rc & RC_FMT1) {
    const e = rc & 0x3f;
    const base = RC_FMT1 + e;
    const row = lookupFormat1(e);
    const n = (rc >>> 8) & 0xf;
    const where = rc & 0x40 ? { parameter: n } : n & 0x8 ? { session: n & 0x7 } : n === 0 ? {} : { handle: n };
    return { rc, format: 'format-1', name: row ? `TPM_RC_${row[0]}` : `TPM_RC_${hex(base)}`, base, meaning: row?.[1] ?? 'an error the TPM 2.0 specification does not list', ...where };
  }
  if ((rc & RC_VER1) === 0) return unknown(rc, 'tpm-1.2', 'a TPM 1.2 response code: the device is not a TPM 2.0');
  if (rc & 0x400) return unknown(rc, 'vendor', 'a vendor-defined response code; see the TPM maker\'s documentation');
  const e = rc & 0x7f;
  if ((rc & RC_WARN) === RC_WARN) {
    const row = lookupWarning(e);
    return { rc, format: 'warning', name: row ? `TPM_RC_${row[0]}` : `TPM_RC_${hex(rc)}`, base: RC_WARN + e, meaning: row?.[1] ?? 'a warning the TPM 2.0 specification does not list' };
  }
  const row = lookupFormat0(e);
  return { rc, format: 'format-0', name: row ? `TPM_RC_${row[0]}` : `TPM_RC_${hex(rc)}`, base: RC_VER1 + e, meaning: row?.[1] ?? 'an error the TPM 2.0 specification does not list' };
}

function unknown(rc: number, format: RCFormat, meaning: string): DecodedRC {
  return { rc, format, name: `TPM_RC_${hex(rc)}`, base: rc, meaning };
}

/** "session 1", "handle 2", "parameter 3" or "" for where a format-one code points. */
export function position(d: DecodedRC): string {
  if (d.session !== undefined) return `session ${d.session}`;
  if (d.handle !== undefined) return `handle ${d.handle}`;
  if (d.parameter !== undefined) return `parameter ${d.parameter}`;
  return '';
}

/** Base codes the client and its callers act on. */
export const RC = {
  SUCCESS: 0x000,
  INITIALIZE: RC_VER1 + 0x000,
  COMMAND_CODE: RC_VER1 + 0x043,
  NV_UNINITIALIZED: RC_VER1 + 0x04a,
  HANDLE: RC_FMT1 + 0x00b,
  AUTH_FAIL: RC_FMT1 + 0x00e,
  BAD_AUTH: RC_FMT1 + 0x022,
  INTEGRITY: RC_FMT1 + 0x01f,
  OBJECT_MEMORY: RC_WARN + 0x002,
  SESSION_MEMORY: RC_WARN + 0x003,
  YIELDED: RC_WARN + 0x008,
  TESTING: RC_WARN + 0x00a,
  LOCKOUT: RC_WARN + 0x021,
  RETRY: RC_WARN + 0x022,
} as const;
