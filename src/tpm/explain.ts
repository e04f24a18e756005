/**
 * Turns a TPM response code into an error that names the command, the entity the TPM pointed at
 * and what to do. The TPM says only "session 1" or "handle 2"; the command's handle list says
 * which entity that is, so the message can say "owner hierarchy password is wrong".
 */
import { HT, RH, commandName, handleType } from './constants.js';
import { TpmCommandError } from './errors.js';
import { RC, decodeRC, position, type DecodedRC } from './rc.js';
import type { CommandSpec, HandleArg } from './wire.js';

const HIERARCHIES: Readonly<Record<number, { name: string; tool: string }>> = {
  [RH.OWNER]: { name: 'owner', tool: 'o' },
  [RH.ENDORSEMENT]: { name: 'endorsement', tool: 'e' },
  [RH.PLATFORM]: { name: 'platform', tool: 'p' },
  [RH.LOCKOUT]: { name: 'lockout', tool: 'l' },
};

/** The handle a format-one code points at, through its session or handle number. */
function entityOf(spec: CommandSpec, d: DecodedRC): HandleArg | undefined {
  if (d.handle !== undefined) return spec.handles[d.handle - 1];
  if (d.session !== undefined) return spec.handles.filter((h) => h.auth)[d.session - 1];
  // TPM_RC_REFERENCE_H0..H6 and S0..S6 are warnings that count handles and sessions from 0.
  if (d.base >= REFERENCE_H0 && d.base <= REFERENCE_H0 + 6) return spec.handles[d.base - REFERENCE_H0];
  if (d.base >= REFERENCE_S0 && d.base <= REFERENCE_S0 + 6) return spec.handles.filter((h) => h.auth)[d.base - REFERENCE_S0];
  return undefined;
}

const REFERENCE_H0 = 0x910;
const REFERENCE_S0 = 0x918;

function authMessage(entity: HandleArg | undefined, d: DecodedRC): string {
  const counted = d.base === RC.AUTH_FAIL;
  const da = counted
    ? 'The failure counted toward the dictionary-attack lockout: fix the password before trying again, or the TPM locks out'
    : 'No dictionary-attack lockout is counted for this one';
  const h = entity ? HIERARCHIES[entity.handle] : undefined;
  if (h) {
    return `${h.name} hierarchy password is wrong: the TPM refused the ${h.name} hierarchy's authorization. Configure the password the ${h.name} hierarchy has (empty unless it was set, e.g. with tpm2_changeauth -c ${h.tool}). ${da}`;
  }
  if (entity && handleType(entity.handle) === HT.NV_INDEX) return `the authorization for ${entity.label} is wrong. ${da}`;
  if (entity?.auth && handleType(entity.auth.session) === HT.POLICY_SESSION) return `the policy session for ${entity.label} was not satisfied`;
  return `the password of ${entity?.label ?? 'the object'} is wrong. ${da}`;
}

const LOCKOUT_TODO =
  'the TPM is in dictionary-attack lockout: too many wrong passwords for keys that are not noDA, so it refuses them all for now. ' +
  'Fix the password first, then wait for the lockout to end (TPM_PT_LOCKOUT_RECOVERY seconds; tpm2_getcap properties-variable shows it and the counter) ' +
  'or have the holder of the lockout hierarchy password reset it (tpm2_dictionarylockout --clear-lockout)';

/** The error for a non-zero response code to `spec`. */
export function commandError(spec: CommandSpec, rc: number): TpmCommandError {
  const d = decodeRC(rc);
  const cmd = commandName(spec.cc);
  const where = position(d);
  const entity = entityOf(spec, d);
  const tag = `(${d.name}${where ? `, ${where}` : ''}${entity ? `${where ? ' =' : ':'} ${entity.label}` : ''}, rc 0x${(rc >>> 0).toString(16)})`;
  if (d.base === RC.LOCKOUT) return new TpmCommandError('tpm_lockout', cmd, d, `tpm: ${cmd}: ${LOCKOUT_TODO} ${tag}`);
  if (d.base === RC.AUTH_FAIL || d.base === RC.BAD_AUTH) return new TpmCommandError('tpm_auth_failed', cmd, d, `tpm: ${cmd}: ${authMessage(entity, d)} ${tag}`);
  return new TpmCommandError('tpm_command_failed', cmd, d, `tpm: ${cmd}: ${d.meaning}${hint(d)} ${tag}`);
}

function hint(d: DecodedRC): string {
  switch (d.base) {
    case RC.OBJECT_MEMORY:
    case RC.SESSION_MEMORY:
      return '; without a resource manager (/dev/tpmrm0) another program may be holding objects: flush them (tpm2_flushcontext -t -s) or use /dev/tpmrm0';
    case RC.INITIALIZE:
      return '; start the TPM with TPM2_Startup (swtpm: --flags startup-clear)';
    case RC.INTEGRITY:
      return '; the key blob was made under another parent or another TPM';
    case RC.HANDLE:
      return '; the object is not loaded or is not the kind the command needs';
    default:
      return '';
  }
}
