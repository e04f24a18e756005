/**
 * Response-code decoding: where a code points (session, handle, parameter) and what kind it is
 * agree with tpm2-tools' tpm2_rc_decode, an independent decoder; the names are pinned to the
 * numbers of the TCG TPM 2.0 Library, Part 2, "TPM_RC" (typed in here, not imported).
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { decodeRC, position } from '../../../src/tpm/rc.js';
import { requireTool } from '../../helpers/require-tool.js';

function found(): boolean {
  try {
    execFileSync('tpm2_rc_decode', ['0x0'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const skip = requireTool('tpm2_rc_decode', found(), 'response codes are checked against tpm2-tools; bash scripts/swtpm.sh install (Debian: tpm2-tools)');

/** tpm2_rc_decode's "tpm:session(1):..." in our terms: layer, kind, number. */
function theirs(rc: number): string {
  const out = execFileSync('tpm2_rc_decode', [`0x${rc.toString(16)}`]).toString().trim();
  const m = /^(\w+):(?:(session|handle|parameter)\((\d+|unk)\)|(warn|error)\((2\.0|1\.2)\))?/.exec(out)!;
  const [, layer, where, n, kind, version] = m;
  if (where) return `${layer} ${where === 'handle' && n === 'unk' ? 'format-1' : `${where} ${n}`}`;
  if (kind === 'warn') return `${layer} warning`;
  if (kind === 'error') return `${layer} ${version === '1.2' ? 'tpm-1.2' : out.includes('Vendor') ? 'vendor' : 'format-0'}`;
  return `${layer}`;
}

function ours(rc: number): string {
  const d = decodeRC(rc);
  const layer = d.layer === undefined ? 'tpm' : ({ 10: 'tcti', 11: 'rmt', 12: 'rm' } as Record<number, string>)[d.layer]!;
  if (d.layer === 11) return `${layer} ${decodeRC(rc & 0xffff).format === 'tpm-1.2' ? 'tpm-1.2' : position(decodeRC(rc & 0xffff)) || decodeRC(rc & 0xffff).format}`;
  if (d.layer !== undefined) return layer;
  return `${layer} ${position(d) || d.format}`;
}

const CODES = [0x9a2, 0x98e, 0x8e, 0x1df, 0x2d5, 0x18b, 0x28b, 0x1c4, 0x922, 0x921, 0x902, 0x908, 0x90a, 0x101, 0x143, 0x14a, 0x155, 0x100, 0x500, 0x1, 0x3d5, 0xa8e, 0xb0922, 0xb098e, 0xc0001, 0xa0001];

describe.skipIf(skip)('TPM response codes', () => {
  it.each(CODES.map((c) => [`0x${c.toString(16)}`, c]))('%s points where tpm2_rc_decode says', (_, rc) => {
    expect(ours(rc)).toBe(theirs(rc));
  });
});

describe('TPM response code names (Part 2 numbers)', () => {
  it.each([
    [0x9a2, 'TPM_RC_BAD_AUTH', { session: 1 }],
    [0x98e, 'TPM_RC_AUTH_FAIL', { session: 1 }],
    [0xa8e, 'TPM_RC_AUTH_FAIL', { session: 2 }],
    [0x18b, 'TPM_RC_HANDLE', { handle: 1 }],
    [0x1df, 'TPM_RC_INTEGRITY', { parameter: 1 }],
    [0x2d5, 'TPM_RC_SIZE', { parameter: 2 }],
    [0x921, 'TPM_RC_LOCKOUT', {}],
    [0x922, 'TPM_RC_RETRY', {}],
    [0x902, 'TPM_RC_OBJECT_MEMORY', {}],
    [0x910, 'TPM_RC_REFERENCE_H0', {}],
    [0x100, 'TPM_RC_INITIALIZE', {}],
    [0x143, 'TPM_RC_COMMAND_CODE', {}],
    [0x14a, 'TPM_RC_NV_UNINITIALIZED', {}],
    [0xb098e, 'TPM_RC_AUTH_FAIL', { layer: 11 }],
  ] as const)('%#x is %s', (rc, name, where) => {
    expect(decodeRC(rc)).toMatchObject({ name, ...where });
  });

  it('a code the spec does not list still decodes, with its number', () => {
    expect(decodeRC(0x97f)).toMatchObject({ format: 'warning', name: 'TPM_RC_0x97f' });
    expect(decodeRC(0x0bf)).toMatchObject({ format: 'format-1', name: 'TPM_RC_0x0bf' });
    expect(decodeRC(0x500).format).toBe('vendor');
    expect(decodeRC(0x0c0001)).toMatchObject({ format: 'layer', layer: 12 });
  });
});
