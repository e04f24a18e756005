/**
 * Runs attacks of h2-attacker.mjs one after another against a running agent, as uid 65534, and
 * prints for each the agent's fds and RSS before, at the peak during, and after; whether the
 * agent stayed up; and whether root got an X.509-SVID during and after. For measuring by hand
 * (the integration test asserts the same things):
 *
 *   node test/attack/probe.mjs <agent pid> <socket> [--seconds S] [--conns N] [--route R] [attack ...]
 */
import { spawn, execFile } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const cliMain = join(here, '../../dist/src/cli/main.js');
const args = process.argv.slice(2);
const [pidArg, socket] = args;
const flags = {};
const names = [];
for (let i = 2; i < args.length; i++) {
  if (args[i].startsWith('--')) flags[args[i].slice(2)] = args[++i];
  else names.push(args[i]);
}
const pid = Number(pidArg);
const fds = () => readdirSync(`/proc/${pid}/fd`).length;
const rssMiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
const alive = () => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const rootFetch = () =>
  new Promise((resolve) => {
    const t = Date.now();
    execFile(process.execPath, [cliMain, 'api', 'fetch', 'x509', '-socketPath', socket, '-timeout', '10s'], { timeout: 15_000 }, (err, stdout) =>
      resolve({ ok: !err && stdout.includes('SPIFFE ID'), ms: Date.now() - t }),
    );
  });
const ALL = ['rapid-reset', 'rapid-reset-full', 'rapid-reset-unknown-path', 'rapid-reset-no-content-type', 'big-frame-close', 'big-frame-hold', 'big-frame-stream', 'continuation', 'continuation-empty', 'header-many', 'header-big', 'header-hpack-amp', 'settings-flood', 'ping-flood', 'window-overflow', 'window-zero-increment', 'window-tiny', 'zero-window', 'slowloris', 'half-closed', 'abandoned', 'bad-path'];
for (const name of names.length ? names : ALL) {
  if (!alive()) {
    console.log(`${name}: agent is gone`);
    break;
  }
  const before = { fds: fds(), rss: rssMiB() };
  let peak = { ...before };
  const sampler = setInterval(() => {
    if (!alive()) return;
    try {
      peak = { fds: Math.max(peak.fds, fds()), rss: Math.max(peak.rss, rssMiB()) };
    } catch {}
  }, 100);
  const child = spawn(process.execPath, [join(here, 'h2-attacker.mjs'), socket, name, '--seconds', flags.seconds ?? '8', '--conns', flags.conns ?? '4', '--route', flags.route ?? 'direct'], {
    uid: 65534,
    gid: 65534,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  const during = new Promise((r) => setTimeout(async () => r(await rootFetch()), 2000));
  await new Promise((r) => child.on('exit', r));
  const duringFetch = await during;
  clearInterval(sampler);
  // Back to baseline: wait up to 15 s for fds to return.
  const deadline = Date.now() + 15_000;
  while (alive() && fds() > before.fds + 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  const up = alive();
  const after = up ? { fds: fds(), rss: rssMiB() } : { fds: NaN, rss: NaN };
  const afterFetch = up ? await rootFetch() : { ok: false, ms: 0 };
  let r = {};
  try {
    r = JSON.parse(out);
  } catch {}
  console.log(
    `${name.padEnd(28)} up=${up} fds ${before.fds}/${peak.fds}/${after.fds} rss ${before.rss.toFixed(0)}/${peak.rss.toFixed(0)}/${after.rss.toFixed(0)} MiB root during=${duringFetch.ok}(${duringFetch.ms}ms) after=${afterFetch.ok} | conns=${r.connections} units=${r.units} goaways=${JSON.stringify(r.goaways)} closed=${r.closedByAgent} stalls=${r.stalls} errs=${JSON.stringify(r.connectErrors)}`,
  );
}
