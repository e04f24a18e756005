/**
 * Runs attacks of h2-attacker.mjs one after another against a running agent, as uid 65534, and
 * prints for each the agent's fds and anonymous RSS before, at the peak during, and after; whether the
 * agent stayed up; and whether root got an X.509-SVID during and after. For measuring by hand
 * (the integration test asserts the same things):
 *
 *   node test/attack/probe.mjs <agent pid> <socket> [--seconds S] [--conns N] [--route direct|filtered|both] [attack ...]
 *
 * Both routes attack at once unless --route says otherwise.
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
/** Anonymous RSS: the agent's own memory, not the node binary's shared file pages. */
const rssMiB = () => Number(/RssAnon:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
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
  let before;
  try {
    before = { fds: fds(), rss: rssMiB() };
  } catch {
    console.log(`${name}: agent is gone`);
    break;
  }
  let peak = { ...before };
  const sampler = setInterval(() => {
    if (!alive()) return;
    try {
      peak = { fds: Math.max(peak.fds, fds()), rss: Math.max(peak.rss, rssMiB()) };
    } catch {}
  }, 100);
  const routes = (flags.route ?? 'both') === 'both' ? ['direct', 'filtered'] : [flags.route];
  const runs = routes.map((route) => {
    const child = spawn(process.execPath, [join(here, 'h2-attacker.mjs'), socket, name, '--seconds', flags.seconds ?? '8', '--conns', flags.conns ?? '4', '--route', route], {
      uid: 65534,
      gid: 65534,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    return new Promise((r) => child.on('exit', () => r(out)));
  });
  const during = new Promise((r) => setTimeout(async () => r(await rootFetch()), 2000));
  const outs = await Promise.all(runs);
  const duringFetch = await during;
  clearInterval(sampler);
  // Back to baseline: wait up to 15 s for fds to return.
  const deadline = Date.now() + 15_000;
  while (alive() && fds() > before.fds + 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  let up = alive();
  let after = { fds: NaN, rss: NaN };
  try {
    if (up) after = { fds: fds(), rss: rssMiB() };
  } catch {
    up = false;
  }
  const afterFetch = up ? await rootFetch() : { ok: false, ms: 0 };
  const totals = outs.map((o) => {
    try {
      return JSON.parse(o);
    } catch {
      return {};
    }
  });
  const sum = (k) => totals.reduce((a, t) => a + (t[k] ?? 0), 0);
  const r = { connections: sum('connections'), units: sum('units'), closedByAgent: sum('closedByAgent'), stalls: sum('stalls'), goaways: totals.map((t) => t.goaways), connectErrors: totals.map((t) => t.connectErrors) };
  console.log(
    `${name.padEnd(28)} up=${up} fds ${before.fds}/${peak.fds}/${after.fds} rss ${before.rss.toFixed(0)}/${peak.rss.toFixed(0)}/${after.rss.toFixed(0)} MiB root during=${duringFetch.ok}(${duringFetch.ms}ms) after=${afterFetch.ok} | conns=${r.connections} units=${r.units} goaways=${JSON.stringify(r.goaways)} closed=${r.closedByAgent} stalls=${r.stalls} errs=${JSON.stringify(r.connectErrors)}`,
  );
}
