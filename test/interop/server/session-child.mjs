// A session in its own process, so a test can kill -9 it at any moment. Reads its setup as JSON
// from argv[2]; prints "READY <spiffe id>" once started, "ROTATED" after each rotation, and
// "FATAL <code>" / "FAILED <code> <message>" on errors. Runs the compiled agent (npm run build).
// The node attestor and key manager come from the catalogs, as the agent builds them.
import { createNodeAttestor } from '../../../dist/src/attestation/node/catalog.js';
import { createServerSession } from '../../../dist/src/authority/server/server-session.js';
import { systemClock } from '../../../dist/src/clock.js';
import { createKeyManager } from '../../../dist/src/keymanager/catalog.js';

const setup = JSON.parse(process.argv[2]);
const say = (s) => process.stdout.write(`${s}\n`);
const log = {
  child: () => log,
  trace() {},
  debug() {},
  info: (o, m) => say(`LOG ${m ?? o}`),
  warn: (o, m) => say(`LOG ${m ?? o}`),
  error: (o, m) => say(`LOG ${m ?? o}`),
};
const ctx = { file: setup.configFile };
const deps = { log, clock: systemClock };
const session = createServerSession({
  options: setup.options,
  keyManager: await createKeyManager(setup.plugins, ctx, deps),
  nodeAttestor: await createNodeAttestor(setup.plugins, ctx, { ...deps, joinToken: setup.joinToken }),
  log,
  clock: systemClock,
});
session.onFatal((e) => {
  say(`FATAL ${e.code}`);
  process.exit(3);
});
try {
  await session.start(new AbortController().signal);
} catch (e) {
  say(`FAILED ${e.code} ${e.message}`);
  process.exit(2);
}
say(`READY ${session.agentSVID().spiffeId}`);
let last = session.agentSVID().chain[0];
setInterval(() => {
  const now = session.agentSVID().chain[0];
  if (now !== last) {
    last = now;
    say('ROTATED');
  }
}, 200);
