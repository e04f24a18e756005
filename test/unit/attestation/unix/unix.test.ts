/**
 * The unix workload attestor against real child processes under distinct uids/gids
 * (the test runner is root), real binaries on disk, and fixture passwd/group files.
 * Only the effective-vs-real case also uses a fixture /proc tree.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../../src/config/errors.js';
import type { PluginConfig } from '../../../../src/config/types.js';
import { UnixAttestor, parseUnixConfig, type UnixAttestorConfig } from '../../../../src/attestation/workload/unix/index.js';
import { WorkloadRefusedError } from '../../../../src/attestation/workload/types.js';
import { UserDb } from '../../../../src/attestation/workload/unix/user-db.js';
import { ProcError } from '../../../../src/proc/errors.js';
import { ProcReader } from '../../../../src/proc/proc-reader.js';
import { sleeper, waitExit } from '../../../helpers/processes.js';
import { runCompiledAs, unitSettings, type Privileges } from '../../../helpers/privileges.js';

const UID = 1301;
const GID = 1302;
const SUPP_NAMED = 1401;
const SUPP_UNNAMED = 1402;

let dir: string;
let users: UserDb;
const children: ChildProcess[] = [];
const signal = new AbortController().signal;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'unix-attestor-'));
  chmodSync(dir, 0o755);
  writeFileSync(
    join(dir, 'passwd'),
    ['# fixture passwd', 'root:x:0:0:root:/root:/bin/sh', `alice:x:${UID}:${GID}::/home/alice:/bin/sh`, `alias:x:${UID}:${GID}::/home/alias:/bin/sh`, ''].join('\n'),
  );
  writeFileSync(join(dir, 'group'), ['root:x:0:', `alicegrp:x:${GID}:`, `devs:x:${SUPP_NAMED}:alice`, ''].join('\n'));
  users = new UserDb(join(dir, 'passwd'), join(dir, 'group'));
});

afterEach(async () => {
  for (const c of children.splice(0)) {
    c.kill('SIGKILL');
    await waitExit(c);
  }
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function track<T extends ChildProcess>(c: T): T {
  children.push(c);
  return c;
}

async function spawned(c: ChildProcess): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    c.once('spawn', () => resolve());
    c.once('error', reject);
  });
  return c.pid!;
}

/** A real node process started as root that drops to the given ids itself and says "ready" when done. */
async function selfDropping(code: string): Promise<number> {
  const c = track(spawn(process.execPath, ['-e', `${code};process.stdout.write('ready');setInterval(()=>{},1e6)`], { stdio: ['ignore', 'pipe', 'inherit'] }));
  await new Promise<void>((resolve, reject) => {
    c.stdout!.once('data', () => resolve());
    c.once('exit', (code) => reject(new Error(`child exited early with ${code}`)));
  });
  return c.pid!;
}

const cfg = (o: Partial<UnixAttestorConfig> = {}): UnixAttestorConfig => ({ discoverWorkloadPath: false, workloadSizeLimit: 0, ...o });
const attestor = (o: Partial<UnixAttestorConfig> = {}, proc = new ProcReader()): UnixAttestor => new UnixAttestor(cfg(o), proc, users);
const sha256File = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

/** A private copy of a small real executable, runnable by the test uid. */
function copyOfSleep(name: string): string {
  const p = join(dir, name);
  copyFileSync('/bin/sleep', p);
  chmodSync(p, 0o755);
  return p;
}

describe('unix attestor: identity selectors of a real process', () => {
  it('gives uid, user, gid and group of a process running under another uid and gid', async () => {
    const pid = await spawned(track(sleeper({ uid: UID, gid: GID })));
    const selectors = await attestor().attest(pid, signal);
    // libuv drops supplementary groups when it switches ids, so there are none here.
    expect([...selectors].sort()).toEqual([`gid:${GID}`, 'group:alicegrp', `uid:${UID}`, 'user:alice'].sort());
  });

  it('names a uid after its first passwd line and leaves out names it cannot resolve', async () => {
    const pid = await spawned(track(sleeper({ uid: 1399, gid: 1398 })));
    expect([...(await attestor().attest(pid, signal))].sort()).toEqual(['gid:1398', 'uid:1399']);
    const pid2 = await spawned(track(sleeper({ uid: UID, gid: GID })));
    const sel = await attestor().attest(pid2, signal);
    expect(sel).toContain('user:alice');
    expect(sel).not.toContain('user:alias');
  });

  it('lists every supplementary gid and the names of those it can resolve', async () => {
    const pid = await selfDropping(`process.setgroups([${SUPP_NAMED},${SUPP_UNNAMED}]);process.setgid(${GID});process.setuid(${UID})`);
    const selectors = await attestor().attest(pid, signal);
    expect([...selectors].sort()).toEqual(
      [
        `uid:${UID}`,
        'user:alice',
        `gid:${GID}`,
        'group:alicegrp',
        `supplementary_gid:${SUPP_NAMED}`,
        'supplementary_group:devs',
        `supplementary_gid:${SUPP_UNNAMED}`,
      ].sort(),
    );
  });

  it('uses the effective uid and gid of a real process whose real ids are root', async () => {
    const pid = await selfDropping(`process.setegid(${GID});process.seteuid(${UID})`);
    const st = await new ProcReader().status(pid);
    expect([st.realUid, st.uid, st.realGid, st.gid]).toEqual([0, UID, 0, GID]);
    const selectors = await attestor().attest(pid, signal);
    expect(selectors).toContain(`uid:${UID}`);
    expect(selectors).toContain(`gid:${GID}`);
    expect(selectors).not.toContain('uid:0');
    expect(selectors).not.toContain('gid:0');
  });

  it.each([
    { name: 'effective ids in the second column', uid: '1000\t1301\t1301\t1301', gid: '1000\t1302\t1302\t1302', want: ['uid:1301', 'user:alice', 'gid:1302', 'group:alicegrp'] },
    { name: 'a single column', uid: '1301', gid: '1302', want: ['uid:1301', 'user:alice', 'gid:1302', 'group:alicegrp'] },
    { name: 'real ids that resolve and effective ids that do not', uid: '1301\t1500\t1500\t1500', gid: '1302\t1501\t1501\t1501', want: ['uid:1500', 'gid:1501'] },
  ])('reads $name from a fixture /proc status', async ({ uid, gid, want }) => {
    const root = mkdtempSync(join(tmpdir(), 'unix-proc-'));
    mkdirSync(join(root, '4242'));
    writeFileSync(join(root, '4242', 'status'), `Name:\tapp\nUid:\t${uid}\nGid:\t${gid}\nGroups:\t\n`);
    expect(await attestor({}, new ProcReader(root)).attest(4242, signal)).toEqual(want);
    rmSync(root, { recursive: true, force: true });
  });
});

describe('unix attestor: discover_workload_path', () => {
  it('gives the real binary path and the sha256 of that file', async () => {
    const bin = copyOfSleep('path-sleep');
    const pid = await spawned(track(spawn(bin, ['1000'], { uid: UID, gid: GID, stdio: 'ignore' })));
    const selectors = await attestor({ discoverWorkloadPath: true }).attest(pid, signal);
    expect(selectors).toContain(`path:${realpathSync(bin)}`);
    expect(selectors).toContain(`sha256:${sha256File(bin)}`);
    expect(selectors.filter((s) => s.startsWith('sha256:'))).toHaveLength(1);
    expect(selectors.find((s) => s.startsWith('sha256:'))).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('resolves a symlinked binary to its target', async () => {
    const pid = await spawned(track(spawn('/bin/sleep', ['1000'], { uid: UID, gid: GID, stdio: 'ignore' })));
    const selectors = await attestor({ discoverWorkloadPath: true }).attest(pid, signal);
    expect(selectors).toContain(`path:${realpathSync('/bin/sleep')}`);
    expect(selectors).toContain(`sha256:${sha256File('/bin/sleep')}`);
  });

  it('gives neither path nor sha256 when discover_workload_path is off', async () => {
    const pid = await spawned(track(spawn('/bin/sleep', ['1000'], { uid: UID, gid: GID, stdio: 'ignore' })));
    const selectors = await attestor({ discoverWorkloadPath: false }).attest(pid, signal);
    expect(selectors.filter((s) => s.startsWith('path:') || s.startsWith('sha256:'))).toEqual([]);
  });

  it.each([
    { limit: -1, sha: false },
    { limit: 0, sha: true },
    { limit: 'size', sha: true },
  ] as const)('with workload_size_limit $limit hashes the binary: $sha', async ({ limit, sha }) => {
    const bin = copyOfSleep('limit-sleep');
    const size = statSync(bin).size;
    const pid = await spawned(track(spawn(bin, ['1000'], { uid: UID, gid: GID, stdio: 'ignore' })));
    const selectors = await attestor({ discoverWorkloadPath: true, workloadSizeLimit: limit === 'size' ? size : limit }).attest(pid, signal);
    expect(selectors).toContain(`path:${realpathSync(bin)}`);
    expect(selectors.includes(`sha256:${sha256File(bin)}`)).toBe(sha);
    if (!sha) expect(selectors.some((s) => s.startsWith('sha256:'))).toBe(false);
  });

  it('fails attestation, naming the limit, when the binary is larger than workload_size_limit', async () => {
    const bin = copyOfSleep('big-sleep');
    const size = statSync(bin).size;
    const pid = await spawned(track(spawn(bin, ['1000'], { uid: UID, gid: GID, stdio: 'ignore' })));
    const err = await attestor({ discoverWorkloadPath: true, workloadSizeLimit: size - 1 })
      .attest(pid, signal)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkloadRefusedError);
    expect(err).toMatchObject({ code: 'workload_too_large' });
    expect((err as Error).message).toContain(`workload_size_limit ${size - 1}`);
    expect((err as Error).message).toContain(String(size));
  });

  it('hashes a binary again after it was replaced in place, even with the old mtime restored', async () => {
    const bin = copyOfSleep('replaced-sleep');
    const a = attestor({ discoverWorkloadPath: true });
    const first = track(spawn(bin, ['1000'], { uid: UID, gid: GID, stdio: 'ignore' }));
    const before = await a.attest(await spawned(first), signal);
    expect(before).toContain(`sha256:${sha256File(bin)}`);
    first.kill('SIGKILL');
    await waitExit(first);

    // Same inode, same size, same mtime: only the content (and ctime) differ.
    const old = statSync(bin);
    const bytes = readFileSync(bin);
    const at = bytes.indexOf('Usage');
    expect(at).toBeGreaterThan(0);
    bytes[at] = 'W'.charCodeAt(0);
    writeFileSync(bin, bytes);
    utimesSync(bin, old.atime, old.mtime);
    expect(statSync(bin).ino).toBe(old.ino);

    const second = track(spawn(bin, ['1000'], { uid: UID, gid: GID, stdio: 'ignore' }));
    const after = await a.attest(await spawned(second), signal);
    const want = `sha256:${sha256File(bin)}`;
    expect(want).not.toBe(before.find((s) => s.startsWith('sha256:')));
    expect(after).toContain(want);
  });

  it('hashes a binary again after a new file was renamed over its path', async () => {
    const bin = copyOfSleep('renamed-sleep');
    const a = attestor({ discoverWorkloadPath: true });
    const first = track(spawn(bin, ['1000'], { uid: UID, gid: GID, stdio: 'ignore' }));
    const h1 = (await a.attest(await spawned(first), signal)).find((s) => s.startsWith('sha256:'));
    first.kill('SIGKILL');
    await waitExit(first);
    const next = join(dir, 'renamed-sleep.new');
    const bytes = readFileSync('/bin/sleep');
    bytes[bytes.indexOf('Usage')] = 'X'.charCodeAt(0);
    writeFileSync(next, bytes, { mode: 0o755 });
    const { renameSync } = await import('node:fs');
    renameSync(next, bin);
    const second = track(spawn(bin, ['1000'], { uid: UID, gid: GID, stdio: 'ignore' }));
    const h2 = (await a.attest(await spawned(second), signal)).find((s) => s.startsWith('sha256:'));
    expect(h2).toBe(`sha256:${sha256File(bin)}`);
    expect(h2).not.toBe(h1);
  });
});

describe('unix attestor: failures', () => {
  it.each([false, true])('reports a process that has exited as a typed process_gone error (discover_workload_path %s)', async (discover) => {
    const c = sleeper({ uid: UID, gid: GID });
    const pid = await spawned(c);
    c.kill('SIGKILL');
    await waitExit(c);
    const err = await attestor({ discoverWorkloadPath: discover })
      .attest(pid, signal)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProcError);
    expect(err).toMatchObject({ code: 'process_gone' });
    expect((err as Error).message).toContain(String(pid));
  });
});

/**
 * The compiled attestor (run `npm run build` first) in a child process under an agent's own uid,
 * so the kernel's checks are the ones a non-root agent meets: a plain user, or the systemd unit's
 * two capabilities. The workloads are of other uids.
 */
describe('unix attestor: as a non-root agent', () => {
  const AGENT = 4310;
  const plain: Privileges = { uid: AGENT, gid: AGENT, caps: [] };
  const unit: Privileges = { uid: AGENT, gid: AGENT, caps: unitSettings().caps };

  function attestAs(p: Privileges, pid: number, discover: boolean): Promise<unknown> {
    return runCompiledAs(
      p,
      `const { UnixAttestor } = await load('attestation/workload/unix/index.js');
       const { ProcReader } = await load('proc/proc-reader.js');
       const a = new UnixAttestor({ discoverWorkloadPath: ${discover}, workloadSizeLimit: 0 }, new ProcReader());
       try { out({ selectors: await a.attest(${pid}, new AbortController().signal) }); }
       catch (e) { out({ code: e.code, message: e.message }); }`,
    );
  }

  it('as a plain user: says discover_workload_path needs CAP_SYS_PTRACE for another uid\'s process, never that it exited', async () => {
    const pid = await spawned(track(spawn('/bin/sleep', ['1000'], { uid: UID, gid: GID, stdio: 'ignore' })));
    const r = (await attestAs(plain, pid, true)) as { code: string; message: string };
    expect(r).toMatchObject({ code: 'proc_denied', message: expect.stringContaining(`/proc/${pid}/exe: EACCES`) });
    expect(r.message).toMatch(new RegExp(`the agent \\(uid ${AGENT}\\) needs CAP_SYS_PTRACE \\(the systemd unit grants it\\) or root`));
    expect(r.message).not.toMatch(/exited|no longer exists/);
  });

  it('as a plain user: still gives uid and gid selectors without discover_workload_path (they need no privilege)', async () => {
    const pid = await spawned(track(spawn('/bin/sleep', ['1000'], { uid: UID, gid: GID, stdio: 'ignore' })));
    expect(await attestAs(plain, pid, false)).toEqual({ selectors: expect.arrayContaining([`uid:${UID}`, `gid:${GID}`]) });
  });

  it('with CAP_SYS_PTRACE alone: names CAP_DAC_READ_SEARCH for a binary the agent may not read (mode 0711)', async () => {
    const bin = copyOfSleep('exec-only-sleep');
    chmodSync(bin, 0o711);
    const pid = await spawned(track(spawn(bin, ['1000'], { uid: UID, gid: GID, stdio: 'ignore' })));
    const r = await attestAs({ ...unit, caps: ['sys_ptrace'] }, pid, true);
    expect(r).toMatchObject({ code: 'proc_denied', message: expect.stringContaining(`(${realpathSync(bin)})`) });
    expect((r as { message: string }).message).toMatch(/needs CAP_DAC_READ_SEARCH \(the systemd unit grants it\) or root/);
  });

  it('with the systemd unit\'s capabilities: path and sha256 of another uid\'s binary, even one it may not read', async () => {
    const bin = copyOfSleep('unit-exec-only-sleep');
    chmodSync(bin, 0o711);
    const pid = await spawned(track(spawn(bin, ['1000'], { uid: UID, gid: GID, stdio: 'ignore' })));
    const r = (await attestAs(unit, pid, true)) as { selectors: string[] };
    expect(r.selectors).toEqual(expect.arrayContaining([`uid:${UID}`, `path:${realpathSync(bin)}`, `sha256:${sha256File(bin)}`]));
  });
});

describe('unix attestor: configuration', () => {
  const P = 'plugins.WorkloadAttestor.unix';
  const plugin = (data: Record<string, unknown>): PluginConfig => ({ type: 'WorkloadAttestor', name: 'unix', enabled: true, data, dataFile: undefined, path: P });

  it.each([
    { data: {}, want: { discoverWorkloadPath: false, workloadSizeLimit: 0 } },
    { data: { discover_workload_path: true }, want: { discoverWorkloadPath: true, workloadSizeLimit: 0 } },
    { data: { discover_workload_path: true, workload_size_limit: -1 }, want: { discoverWorkloadPath: true, workloadSizeLimit: -1 } },
    { data: { workload_size_limit: 1048576 }, want: { discoverWorkloadPath: false, workloadSizeLimit: 1048576 } },
  ])('accepts $data', ({ data, want }) => {
    expect(parseUnixConfig(plugin(data))).toEqual(want);
  });

  it.each([
    { data: { discover_workload_pat: true }, key: `${P}.plugin_data.discover_workload_pat` },
    { data: { discover_workload_path: 'yes' }, key: `${P}.plugin_data.discover_workload_path` },
    { data: { workload_size_limit: '1MB' }, key: `${P}.plugin_data.workload_size_limit` },
    { data: { workload_size_limit: 1.5 }, key: `${P}.plugin_data.workload_size_limit` },
  ])('rejects $data naming $key', ({ data, key }) => {
    let err: unknown;
    try {
      parseUnixConfig(plugin(data), '/etc/spire/agent.conf');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems;
    expect(problems).toHaveLength(1);
    expect(problems[0]!.key).toBe(key);
    expect(problems[0]!.file).toBe('/etc/spire/agent.conf');
    expect((err as Error).message).toContain(key);
  });
});
