/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and prints where the non-idle time went: self time by
 * area (our dist/src/<dir>, grpc-js, Node's internals by module, GC, native) and the top functions.
 * Usage: node bench/lib/profile-top.mjs <file.cpuprofile> [topN]
 */
import { readFileSync } from 'node:fs';

const [file, topArg] = process.argv.slice(2);
const top = Number(topArg ?? 30);
const prof = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map();
const dt = prof.timeDeltas;
for (let i = 0; i < prof.samples.length; i++) self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + (dt[i] ?? 0));

function area(cf) {
  const u = cf.url;
  if (!u) return cf.functionName.startsWith('(') ? cf.functionName : `native ${cf.functionName || '(anonymous)'}`;
  const ours = /\/dist\/src\/(.+?)\.js$/.exec(u);
  if (ours) return `ours ${ours[1].split('/').slice(0, 2).join('/')}`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u);
  if (pkg) return pkg[1];
  const nodeMod = /^node:internal\/(.+)$/.exec(u) ?? /^node:(.+)$/.exec(u);
  if (nodeMod) return `node ${nodeMod[1].split('/').slice(0, 2).join('/')}`;
  return u;
}

const areas = new Map();
const fns = new Map();
let total = 0;
for (const [id, us] of self) {
  const n = byId.get(id);
  const cf = n.callFrame;
  if (cf.functionName === '(idle)') continue;
  total += us;
  const a = area(cf);
  areas.set(a, (areas.get(a) ?? 0) + us);
  const key = `${cf.functionName || '(anonymous)'} ${cf.url ? `${cf.url.replace(/^.*\/(dist\/src|node_modules)\//, '')}:${cf.lineNumber + 1}` : ''}`;
  fns.set(key, (fns.get(key) ?? 0) + us);
}
const pc = (us) => `${((100 * us) / total).toFixed(1).padStart(5)} %`;
console.log(`${file}: ${(total / 1000).toFixed(0)} ms busy (idle excluded), ${prof.samples.length} samples`);
console.log('-- by area');
for (const [a, us] of [...areas].sort((x, y) => y[1] - x[1]).slice(0, top)) console.log(`  ${pc(us)}  ${a}`);
console.log('-- top functions (self)');
for (const [k, us] of [...fns].sort((x, y) => y[1] - x[1]).slice(0, top)) console.log(`  ${pc(us)}  ${k}`);
