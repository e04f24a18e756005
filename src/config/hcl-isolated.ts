/**
 * The HCL parser is a Go program compiled to WebAssembly; once loaded it keeps ~70 MiB
 * resident, and a worker thread still leaves ~35 MiB behind after it ends. The agent
 * parses its config once, so the parse runs in a short-lived child process (~0.2 s)
 * and none of that memory stays with the daemon.
 */
import { spawn } from 'node:child_process';

const CHILD_SOURCE = `
let text = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (c) => (text += c));
process.stdin.on('end', async () => {
  const { name, module } = JSON.parse(process.argv[1]);
  try {
    const { parse } = await import(module);
    process.stdout.write(JSON.stringify({ ok: true, value: await parse(name, text) }));
  } catch (err) {
    process.stdout.write(JSON.stringify({ ok: false, message: err instanceof Error ? err.message : String(err) }));
  }
});
`;

/** A parse takes well under a second; a parser stuck on some input must not stall start-up for good. */
const PARSE_TIMEOUT_MS = 30_000;

export function parseHclIsolated(name: string, text: string, timeoutMs = PARSE_TIMEOUT_MS): Promise<unknown> {
  const module = import.meta.resolve('@cdktf/hcl2json');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD_SOURCE, JSON.stringify({ name, module })], {
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err = (err + c).slice(-4096)));
    child.once('error', reject);
    // EPIPE when the child dies before reading its input: 'close' reports it; unhandled, it would crash the agent.
    child.stdin.on('error', () => {});
    child.once('close', (code, signal) => {
      let m: { ok: boolean; value?: unknown; message?: string };
      try {
        m = JSON.parse(out) as typeof m;
      } catch {
        if (signal === 'SIGKILL') return reject(new Error(`the HCL parser did not finish within ${timeoutMs / 1000} s`));
        reject(new Error(`HCL parser process exited with code ${code}: ${err.trim().slice(0, 500)}`));
        return;
      }
      if (m.ok) resolve(m.value);
      else reject(new Error(m.message));
    });
    child.stdin.end(text);
  });
}
