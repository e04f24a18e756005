// A session in its own process, so a test can kill -9 it at any moment. Reads its setup as JSON
// from argv[2]; prints "READY <spiffe id>" once started, "ROTATED" after each rotation, and
// "FATAL <code>" / "FAILED <code> <message>" on errors. Runs the compiled agent (npm run build).
import { createServerSession } from '../../../dist/src/authority/server/server-session.js';
import { systemClock } from '../../../dist/src/clock.js';

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
const session = createServerSession({ ...setup, log, clock: systemClock });
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
