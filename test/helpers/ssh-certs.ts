/**
 * OpenSSH host keys and certificates made by the real ssh-keygen, for sshpop: a test CA
 * (`ssh-keygen -s`), host keys of each type and format, host or user certificates with any
 * validity. The agent ID spire-server gives a certificate is computed here independently of
 * src/: unpadded base64url of SHA-256 over the certificate's wire bytes.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export function hasSshKeygen(): boolean {
  try {
    execFileSync('ssh-keygen', ['-?'], { stdio: 'ignore' });
    return true;
  } catch (err) {
    // ssh-keygen -? prints usage and exits 1: it is there.
    return (err as { status?: number }).status === 1;
  }
}

export type HostKeyType = 'ed25519' | 'ecdsa' | 'ecdsa-384' | 'rsa';

export interface HostIdentity {
  keyPath: string;
  certPath: string;
  /** spire-server's agent ID path element for this certificate. */
  fingerprint: string;
  agentId(trustDomain: string): string;
}

export interface IssueOptions {
  type?: HostKeyType;
  /** Key file format: OpenSSH's own (default) or PEM (PKCS#1/SEC1) / PKCS#8 via ssh-keygen -m. */
  format?: 'openssh' | 'pem' | 'pkcs8';
  principals?: string[];
  /** ssh-keygen -V, default "-5m:+1h". */
  validity?: string;
  /** A user certificate instead of a host certificate (no -h). */
  user?: boolean;
  /** Passphrase for the key file. */
  passphrase?: string;
}

export class SSHTestCA {
  private n = 0;

  private constructor(
    readonly dir: string,
    readonly name: string,
    /** The CA's public key line, for spire-server's cert_authorities. */
    readonly publicKeyLine: string,
  ) {}

  static async create(dir: string, name = 'ssh-ca'): Promise<SSHTestCA> {
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', join(dir, name)]);
    return new SSHTestCA(dir, name, (await readFile(join(dir, `${name}.pub`), 'utf8')).trim());
  }

  /** A new host key and its certificate signed by this CA. */
  async issue(host: string, o: IssueOptions = {}): Promise<HostIdentity> {
    const keyPath = join(this.dir, `${host}-${++this.n}`);
    await this.newKey(keyPath, o);
    return this.certify(keyPath, host, o);
  }

  /** A certificate for an existing host key (written next to it as <key>-cert.pub). */
  async certify(keyPath: string, host: string, o: IssueOptions = {}): Promise<HostIdentity> {
    const args = ['-q', '-s', join(this.dir, this.name), '-I', host, '-V', o.validity ?? '-5m:+1h'];
    if (!o.user) args.push('-h');
    const principals = o.principals ?? [host];
    if (principals.length > 0) args.push('-n', principals.join(','));
    await run('ssh-keygen', [...args, `${keyPath}.pub`]);
    const certPath = `${keyPath}-cert.pub`;
    const blob = Buffer.from((await readFile(certPath, 'utf8')).split(/\s+/)[1] ?? '', 'base64');
    const fingerprint = createHash('sha256').update(blob).digest('base64url');
    return { keyPath, certPath, fingerprint, agentId: (td) => `spiffe://${td}/spire/agent/sshpop/${fingerprint}` };
  }

  private async newKey(path: string, o: IssueOptions): Promise<void> {
    const t = o.type ?? 'ed25519';
    const typeArgs = t === 'ecdsa' ? ['-t', 'ecdsa', '-b', '256'] : t === 'ecdsa-384' ? ['-t', 'ecdsa', '-b', '384'] : t === 'rsa' ? ['-t', 'rsa', '-b', '2048'] : ['-t', 'ed25519'];
    const fmt = o.format === 'pem' ? ['-m', 'PEM'] : o.format === 'pkcs8' ? ['-m', 'PKCS8'] : [];
    await run('ssh-keygen', ['-q', ...typeArgs, ...fmt, '-N', o.passphrase ?? '', '-C', 'host', '-f', path]);
  }
}
