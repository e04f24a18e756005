/**
 * A real software TPM (swtpm) for a test file, through scripts/swtpm.sh: each instance is a fresh
 * copy of the provisioned TPM (EK certificate, DevID key), on its own Unix socket, stopped and
 * removed by `stop()`. tpm2-tools reach the same TPM through `tool()`, so a test can compare what
 * our client did with what an independent TPM stack sees.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { TpmClient, type TpmClientOptions } from '../../../src/tpm/index.js';

const run = promisify(execFile);
export const SWTPM_SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../scripts/swtpm.sh');

/** The tools the TPM tests need, all on PATH. */
export function swtpmFound(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v swtpm && command -v swtpm_setup && command -v swtpm_ioctl && command -v tpm2_createprimary && command -v openssl'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const SWTPM_WHY = 'the TPM client is tested against a real software TPM; bash scripts/swtpm.sh install (Debian: swtpm swtpm-tools tpm2-tools)';

export class Swtpm {
  private constructor(
    readonly dir: string,
    readonly socket: string,
    /** Provisioned files: devid_pub.bin, devid_priv.bin, devid.pem, ek-ca.pem, ... (see scripts/swtpm.sh). */
    readonly template: string,
    readonly pid: number,
    private readonly onExit: () => void,
  ) {}

  /**
   * `cache`: where swtpm.sh provisions its template (SWTPM_CACHE). Another cache directory is
   * another provisioning, so another TPM: other seeds, another SRK, another EK.
   */
  static async start(opts: { cache?: string } = {}): Promise<Swtpm> {
    const dir = mkdtempSync(join(tmpdir(), 'spiffe-agent-swtpm-'));
    // swtpm runs as a daemon: if this test process dies before its afterAll, stop it on the way out.
    const onExit = (): void => void execFileSync('bash', [SWTPM_SCRIPT, 'stop', dir], { stdio: 'ignore' });
    process.once('exit', onExit);
    const runEnv = opts.cache === undefined ? process.env : { ...process.env, SWTPM_CACHE: opts.cache };
    const { stdout } = await run('bash', [SWTPM_SCRIPT, 'start', dir], { timeout: 120_000, env: runEnv });
    const env = Object.fromEntries(stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    return new Swtpm(env['SWTPM_DIR']!, env['SWTPM_SOCKET']!, env['SWTPM_TEMPLATE']!, Number(env['SWTPM_PID']), onExit);
  }

  file(name: string): Buffer {
    return readFileSync(join(this.template, name));
  }

  get devidPassword(): string {
    return this.file('devid_password').toString('utf8');
  }

  open(opts: TpmClientOptions = {}): Promise<TpmClient> {
    return TpmClient.open(this.socket, opts);
  }

  /** Runs a tpm2-tools command against this TPM; resolves with stdout (a Buffer). */
  async tool(cmd: string, args: readonly string[], cwd?: string): Promise<Buffer> {
    const { stdout } = await run(cmd, args, { env: { ...process.env, TPM2TOOLS_TCTI: `swtpm:path=${this.socket}` }, encoding: 'buffer', cwd, timeout: 60_000 });
    return stdout;
  }

  /** Transient objects and loaded sessions in the TPM, as tpm2_getcap sees them. */
  async loaded(): Promise<string[]> {
    const out = (await this.tool('tpm2_getcap', ['handles-transient'])).toString() + (await this.tool('tpm2_getcap', ['handles-loaded-session'])).toString();
    return out.split('\n').map((l) => l.replace(/^- /, '').trim()).filter((l) => l !== '');
  }

  async stop(): Promise<void> {
    process.off('exit', this.onExit);
    await run('bash', [SWTPM_SCRIPT, 'stop', this.dir], { timeout: 30_000 });
  }
}
