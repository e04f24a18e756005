// KeyManager "tpm" creating keys in its own process, so a test can kill -9 it at a chosen step of
// key creation (the manager's atStep hook, which only tests pass) or at a random moment. Reads its
// setup as JSON from argv[2]: { directory, socket, ids, stopAt?: { id, step } }. Prints
// "STEP <id> <step>" at each step, "PARKED" when it stops at stopAt and waits to be killed,
// "KEY <id> <spki hex>" per key generated and "DONE". Runs the compiled agent (npm run build).
import { systemClock } from '../../../dist/src/clock.js';
import { TpmKeyManager } from '../../../dist/src/keymanager/tpm/index.js';
import { openTpm } from '../../../dist/src/tpm/open-tpm.js';

const { directory, socket, ids, stopAt } = JSON.parse(process.argv[2]);
const say = (s) => process.stdout.write(`${s}\n`);
const log = { child: () => log, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
let current;
const km = await TpmKeyManager.open({
  config: { directory, tpmDevicePath: socket, ownerHierarchyPassword: '' },
  openTpm,
  log,
  clock: systemClock,
  atStep: async (step) => {
    say(`STEP ${current} ${step}`);
    if (stopAt && stopAt.id === current && stopAt.step === step) {
      say('PARKED');
      await new Promise(() => setInterval(() => {}, 1 << 30));
    }
  },
});
say('OPENED');
for (const id of ids) {
  current = id;
  const k = await km.generateKey(id);
  say(`KEY ${id} ${Buffer.from(k.publicKeySpki).toString('hex')}`);
}
say('DONE');
