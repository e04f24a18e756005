#!/usr/bin/env node
// `npm start`: runs `spiffe-agent run` in the foreground on a development config with the
// embedded authority and a registration entry for the invoking user, so that
// `npx spiffe-agent api fetch x509` in a second terminal gets an SVID at once.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dev = join(root, '.dev');
mkdirSync(dev, { recursive: true, mode: 0o700 });

const uid = Number(process.env.SUDO_UID ?? process.getuid());
let name = String(uid);
try {
  name = process.env.SUDO_USER ?? userInfo().username;
} catch {
  // No passwd entry (containers): the uid is a fine name.
}
const safe = name.replace(/[^A-Za-z0-9._-]/g, '_');

const entriesPath = join(dev, 'entries.json');
const wanted = {
  spiffe_id: `spiffe://example.org/user/${safe}`,
  parent_id: 'spiffe://example.org/spire/agent/dev',
  selectors: [{ type: 'unix', value: `uid:${uid}` }],
  x509_svid_ttl: 3600,
  jwt_svid_ttl: 300,
  hint: 'dev',
};
let entries = { entries: [] };
if (existsSync(entriesPath)) entries = JSON.parse(readFileSync(entriesPath, 'utf8'));
if (!entries.entries.some((e) => e.spiffe_id === wanted.spiffe_id)) {
  entries.entries.push(wanted);
  writeFileSync(entriesPath, JSON.stringify(entries, null, 2) + '\n');
}

const confPath = join(dev, 'agent.conf');
if (!existsSync(confPath)) {
  writeFileSync(
    confPath,
    `# Development config written by scripts/dev-start.mjs (edit freely; it is not overwritten).
agent {
  trust_domain = "example.org"
  data_dir = "${join(dev, 'data')}"
  socket_path = "/tmp/spire-agent/public/api.sock"
  log_level = "INFO"
}

embedded_authority {
  entries_file = "${entriesPath}"
}

plugins {
  WorkloadAttestor "unix" {
    plugin_data {
      discover_workload_path = true
    }
  }
}
`,
  );
}

process.stderr.write(
  `spiffe-agent (development): entry ${wanted.spiffe_id} for uid ${uid}; config ${confPath}\n` +
    `In another terminal: npx spiffe-agent api fetch x509\n`,
);
// main.js itself, not `node main.js`: its shebang carries the agent's node flags (memory).
const child = spawn(join(root, 'dist/src/cli/main.js'), ['run', '-config', confPath], { stdio: 'inherit' });
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 0 : 1)));
