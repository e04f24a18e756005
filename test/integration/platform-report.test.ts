/**
 * The platform report on this machine, from the real daemon and the real systeminformation: the line
 * `spiffe-agent validate` prints and the one `spiffe-agent run` logs on the embedded sample config
 * (conf/agent/agent.conf, paths moved to a temp dir) have the documented shape and say the same
 * thing. Both lines are printed (console.info) so the test log shows what this host is.
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AGENT_MAIN, REPO, cli } from '../helpers/agent-process.js';

const VALUE = String.raw`(?:"(?:[^"\\]|\\.)*"|[^\s"]+)`;
const LINE = new RegExp(
  String.raw`^cloud=(aws|gcp|azure|none|unknown) virtualization=${VALUE} container=(docker|not-detected|unknown) manufacturer=${VALUE} model=${VALUE} tpm=\S+ k8s_token=\S+ node_attestor=none$`,
);

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function sampleConfig(): Promise<string> {
  const dir = await mkdtemp('/tmp/spiffe-agent-platform-');
  dirs.push(dir);
  await copyFile(join(REPO, 'conf/entries.example.json'), join(dir, 'entries.json'));
  const sample = await readFile(join(REPO, 'conf/agent/agent.conf'), 'utf8');
  const conf = join(dir, 'agent.conf');
  await writeFile(
    conf,
    sample
      .replace(/data_dir\s*=\s*"[^"]*"/, `data_dir = "${dir}/data"`)
      .replace(/socket_path\s*=\s*"[^"]*"/, `socket_path = "${dir}/api.sock"`)
      .replace(/entries_file\s*=\s*"[^"]*"/, `entries_file = "${dir}/entries.json"`),
  );
  return conf;
}

let validateLine: string | undefined;

describe('platform report on this machine', () => {
  it('validate prints one Platform line of the documented shape before the verdict', async () => {
    const r = await cli(['validate', '-config', await sampleConfig()]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n').filter(Boolean);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toBe('SPIRE agent configuration file is valid.');
    expect(lines[0]).toMatch(/^Platform: /);
    validateLine = lines[0]!.slice('Platform: '.length);
    console.info(`spiffe-agent validate on this machine: ${lines[0]}`);
    expect(validateLine).toMatch(LINE);
  });

  it('run logs the same line beside start-up, and its probe process is gone afterwards', async () => {
    const conf = await sampleConfig();
    const agent = spawn(process.execPath, [AGENT_MAIN, 'run', '-config', conf], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    let logs = '';
    agent.stdout.on('data', (c: Buffer) => (logs += c.toString()));
    agent.stderr.on('data', (c: Buffer) => (logs += c.toString()));
    const exited = new Promise((r) => agent.once('exit', r));
    try {
      const deadline = Date.now() + 20_000;
      const report = () => /^.*msg="Platform report".*$/m.exec(logs)?.[0];
      while (!(report() && logs.includes('msg="Starting Workload and SDS APIs"')) && Date.now() < deadline && agent.exitCode === null) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const line = report();
      expect(line, logs).toBeDefined();
      console.info(`spiffe-agent run on this machine logged: ${line}`);
      expect(line).toMatch(/^time="[^"]+" level=info msg="Platform report" subsystem_name=platform_report /);
      const fields = line!.replace(/^.* subsystem_name=platform_report /, '');
      expect(fields).toMatch(LINE);
      if (validateLine !== undefined) expect(fields).toBe(validateLine);
      // Embedded mode: no node attestor, so nothing to warn about.
      expect(logs).not.toMatch(/level=warning msg="NodeAttestor/);
      // The systeminformation child has exited: the agent has no child process left.
      const children = async () => (await readFile(`/proc/${agent.pid}/task/${agent.pid}/children`, 'utf8')).trim();
      for (let i = 0; i < 100 && (await children()) !== ''; i++) await new Promise((r) => setTimeout(r, 50));
      expect(await children()).toBe('');
    } finally {
      agent.kill('SIGTERM');
      await exited;
    }
  });
});
