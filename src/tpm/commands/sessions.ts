/**
 * TPM2_StartAuthSession and TPM2_PolicySecret (Part 3): the policy session that satisfies the
 * default EK's authPolicy, PolicySecret(TPM_RH_ENDORSEMENT). Unbound and unsalted, as spire-agent
 * starts it: the session only carries a policy, it protects no parameter.
 */
import { ALG, CC, RH, SE } from '../constants.js';
import { Writer } from '../marshal.js';
import type { SymDef } from '../public-area.js';
import { NULL_SYM } from '../public-area.js';
import type { Command, Runner } from '../wire.js';
import { authorized, plain, readTicket, type Auth, type Ticket } from './common.js';

export interface StartSessionArgs {
  readonly type?: number;
  readonly hashAlg?: number;
  /** 16 zero bytes by default, as spire-agent sends (the nonce must be 16 to 64 bytes). */
  readonly nonceCaller?: Uint8Array;
  readonly symmetric?: SymDef;
}

export interface StartedSession {
  readonly handle: number;
  readonly nonceTPM: Buffer;
}

export function startAuthSessionCommand(a: StartSessionArgs = {}): Command<StartedSession> {
  const sym = a.symmetric ?? NULL_SYM;
  const w = new Writer()
    .tpm2b(a.nonceCaller ?? new Uint8Array(16), 'nonceCaller', 64)
    .tpm2b(new Uint8Array(0), 'encryptedSalt')
    .u8(a.type ?? SE.POLICY)
    .u16(sym.algorithm);
  if (sym.algorithm !== ALG.NULL) w.u16(sym.keyBits).u16(sym.mode);
  const params = w.u16(a.hashAlg ?? ALG.SHA256).finish();
  return {
    spec: { cc: CC.StartAuthSession, handles: [plain(RH.NULL, 'tpmKey'), plain(RH.NULL, 'bind')], params, responseHandles: 1 },
    parse({ handles, params: r }) {
      const nonceTPM = r.tpm2b('nonceTPM', 64);
      r.end();
      return { handle: handles[0]!, nonceTPM };
    },
  };
}

export async function startAuthSession(tpm: Runner, a?: StartSessionArgs, signal?: AbortSignal): Promise<StartedSession> {
  return tpm.run(startAuthSessionCommand(a), signal);
}

export interface PolicySecretArgs {
  /** The entity whose authorization the policy asks for: RH.ENDORSEMENT for the EK. */
  readonly authHandle: number;
  readonly auth?: Auth;
  readonly label?: string;
  readonly session: number;
  readonly nonceTPM?: Uint8Array;
  readonly cpHash?: Uint8Array;
  readonly policyRef?: Uint8Array;
  /** 0: no expiry, and no ticket. */
  readonly expiration?: number;
}

export interface PolicySecretResult {
  readonly timeout: Buffer;
  readonly ticket: Ticket;
}

export function policySecretCommand(a: PolicySecretArgs): Command<PolicySecretResult> {
  const params = new Writer()
    .tpm2b(a.nonceTPM ?? new Uint8Array(0), 'nonceTPM', 64)
    .tpm2b(a.cpHash ?? new Uint8Array(0), 'cpHashA', 64)
    .tpm2b(a.policyRef ?? new Uint8Array(0), 'policyRef', 64)
    .i32(a.expiration ?? 0)
    .finish();
  return {
    spec: { cc: CC.PolicySecret, handles: [authorized(a.authHandle, a.auth, a.label), plain(a.session, 'policy session')], params, responseHandles: 0 },
    parse({ params: r }) {
      const timeout = r.tpm2b('timeout', 8);
      const ticket = readTicket(r, 'policyTicket');
      r.end();
      return { timeout, ticket };
    },
  };
}

export async function policySecret(tpm: Runner, a: PolicySecretArgs, signal?: AbortSignal): Promise<PolicySecretResult> {
  return tpm.run(policySecretCommand(a), signal);
}
