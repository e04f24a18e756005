import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The agent's node flags live in main's first two lines (sh) (memory: issue 9, bench/README.md). Every launcher
// must run main.js itself so that they apply; these tests fail if the flags or a launcher drop them.

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');
const FLAGS = ['--max-semi-space-size=1'];
const [shebang, execLine] = read('src/cli/main.ts').split('\n', 2) as [string, string];

describe('node flags of the agent', () => {
  it('main.ts starts as an sh script that execs node with the memory flag', () => {
    expect(shebang).toBe('#!/bin/sh');
    expect(execLine).toMatch(/^\/\/bin\/true; exec node (--\S+ )+"\$0" "\$@"$/);
    for (const f of FLAGS) expect(execLine.split(/\s+/)).toContain(f);
  });

  it('the two lines take effect when the file is executed: young generation bounded at 1 MiB semi-spaces', () => {
    // The same two lines in front of a probe; objects that survive scavenges make V8 grow the
    // semi-spaces (to 16 MiB each without the flag).
    const probe =
      "import v8 from 'node:v8';const r=new Array(50000);for(let i=0;i<3e6;i++)r[i%50000]={i,s:'x'+i};" +
      "const n=v8.getHeapSpaceStatistics().find((s)=>s.space_name==='new_space');" +
      'console.log(JSON.stringify({newSpace:n.space_size,execArgv:process.execArgv,args:process.argv.slice(2)}))';
    const dir = mkdtempSync(join(tmpdir(), 'launcher-'));
    try {
      const file = join(dir, 'probe.mjs');
      writeFileSync(file, `${shebang}\n${execLine}\n${probe}\n`, { mode: 0o755 });
      const out = JSON.parse(execFileSync(file, ['run', 'a b'], { encoding: 'utf8', timeout: 60_000 })) as {
        newSpace: number;
        execArgv: string[];
        args: string[];
      };
      for (const f of FLAGS) expect(out.execArgv).toContain(f);
      expect(out.args).toEqual(['run', 'a b']);
      expect(out.newSpace).toBeLessThanOrEqual(4 * 1024 * 1024);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the bin, the systemd unit and npm start run main.js itself, not `node main.js`', () => {
    const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string>; scripts: Record<string, string> };
    expect(pkg.bin['spiffe-agent']).toBe('dist/src/cli/main.js');
    expect(pkg.scripts['build']).toContain('chmod +x dist/src/cli/main.js');
    const unit = read('systemd/spiffe-agent.service');
    expect(unit).toMatch(/^ExecStart=\/usr\/local\/bin\/spiffe-agent run /m);
    expect(unit).not.toMatch(/^ExecStart=\S*node\b/m);
    const dev = read('scripts/dev-start.mjs');
    expect(dev).toMatch(/spawn\(join\(root, 'dist\/src\/cli\/main\.js'\), \['run'/);
    expect(dev).not.toMatch(/process\.execPath, \[join\(root, 'dist\/src\/cli\/main\.js'\)/);
  });

  it('the benches start our agent through main.js (its flags too when profiling)', async () => {
    const { agentCommand, AGENT_MAIN } = (await import(join(ROOT, 'bench/lib/common.mjs'))) as {
      agentCommand: (args: string[], flags?: string[]) => [string, string[]];
      AGENT_MAIN: string;
    };
    expect(agentCommand(['run'])).toEqual([AGENT_MAIN, ['run']]);
    const [cmd, args] = agentCommand(['run'], ['--cpu-prof']);
    expect(cmd).toBe(process.execPath);
    expect(args.slice(-2)).toEqual([AGENT_MAIN, 'run']);
    if (readFileSync(AGENT_MAIN, 'utf8').startsWith('#!')) for (const f of FLAGS) expect(args).toContain(f);
    for (const f of ['bench/compare.mjs', 'bench/lib/spire.mjs', 'bench/startup.mjs', 'bench/lib/common.mjs']) {
      expect(read(f), f).not.toMatch(/process\.execPath, \[[^\]]*AGENT_MAIN, 'run'/);
    }
  });
});
