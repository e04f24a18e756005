/**
 * The real daemon under the privileges systemd/spiffe-agent.service gives it, serving callers of
 * other uids (issue 14, point 4: it refused them all as "process exited"), and as a plain user
 * without capabilities, where it must say which privilege it lacks.
 *
 * Applied here as the unit does, with the values read from the shipped unit file: a non-root uid with no passwd entry (DynamicUser=yes); exactly
 * CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH as bounding, inheritable and ambient set
 * (CapabilityBoundingSet=, AmbientCapabilities=); no-new-privs (NoNewPrivileges=yes); umask 0022
 * (UMask=); an open-file limit (LimitNOFILE=65536, or this machine's hard limit if lower: raising
 * it needs CAP_SYS_RESOURCE); data_dir 0700 and the socket directory 0755 owned by that uid
 * (StateDirectory=, RuntimeDirectory=). The test checks the daemon's /proc/<pid>/status for them.
 *
 * Not applied, because they need systemd's mount/UTS namespaces or seccomp filters:
 * ProtectSystem=strict, ProtectHome=read-only, PrivateTmp, PrivateDevices, ProtectKernelTunables,
 * ProtectKernelModules, ProtectKernelLogs, ProtectControlGroups, ProtectClock, ProtectHostname,
 * RestrictNamespaces, RestrictRealtime, RestrictSUIDSGID, LockPersonality, RemoveIPC,
 * RestrictAddressFamilies, SystemCallFilter, SystemCallArchitectures. None of them changes what
 * the kernel lets the agent see of other processes' /proc entries (the unit sets no ProtectProc=
 * and no PrivateUsers=), which is what these tests are about.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, realpathSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentProcess, cli, field, PARENT_ID, TD, type EntryJson } from '../helpers/agent-process.js';
import { unitSettings, type Privileges } from '../helpers/privileges.js';

/** In DynamicUser='s range (61184-65519), with no passwd entry, as systemd's dynamic users have none. */
const UNIT_UID = 61_500;
const PLAIN_UID = 4_510;
const OTHER_UID = 4_511;
const NOBODY = 65_534;
const CAP_DAC_READ_SEARCH = 2;
const CAP_SYS_PTRACE = 19;

const UNIT = unitSettings();
const NODE = realpathSync(process.execPath);
let nodeSha256: string | undefined;

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** LimitNOFILE=, or this machine's hard limit if that is lower (raising it needs CAP_SYS_RESOURCE). */
function nofileLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'))!;
  const hard = line.split(/\s+/)[4]!;
  return hard === 'unlimited' ? UNIT.nofile : Math.min(UNIT.nofile, Number(hard));
}

const entry = (path: string, ...selectors: string[]): EntryJson => ({
  spiffe_id: `spiffe://${TD}${path}`,
  parent_id: PARENT_ID,
  selectors: selectors.map((value) => ({ type: 'unix', value })),
});

let agent: AgentProcess | undefined;
afterEach(async () => {
  await agent?.stop();
  agent = undefined;
});

async function start(runAs: Privileges, discover: boolean, entries: EntryJson[]): Promise<AgentProcess> {
  agent = await AgentProcess.start({
    entries,
    unixPluginData: `discover_workload_path = ${discover}`,
    umask: UNIT.umask,
    runAs: { ...runAs, nofile: nofileLimit() },
  });
  return agent;
}

/** `spiffe-agent api fetch x509` as a real process under uid (and gid) `id`. */
function fetchAs(a: AgentProcess, id: number): ReturnType<typeof cli> {
  return cli(['api', 'fetch', 'x509', '-socketPath', a.socketPath], { uid: id, gid: id });
}

describe('the daemon as the systemd unit runs it', () => {
  it('runs with exactly the unit\'s privileges and serves callers of three other uids, root included, each its own SVID', async () => {
    // What the harness below can reproduce; a unit that changes these needs this test changed too.
    expect(UNIT).toMatchObject({ dynamicUser: true, noNewPrivileges: true, boundingCaps: UNIT.caps, caps: ['dac_read_search', 'sys_ptrace'] });
    nodeSha256 ??= await sha256(NODE);
    const a = await start({ uid: UNIT_UID, gid: UNIT_UID, caps: UNIT.caps }, true, [
      // path and sha256 need /proc/<pid>/exe of a root process: CAP_SYS_PTRACE.
      entry('/root-workload', 'uid:0', `path:${NODE}`, `sha256:${nodeSha256}`),
      entry('/nobody', `uid:${NOBODY}`),
      entry('/other', `uid:${OTHER_UID}`, `path:${NODE}`),
    ]);

    const status = readFileSync(`/proc/${a.proc.pid}/status`, 'utf8');
    const line = (k: string): string => new RegExp(`^${k}:\\s*(.*)$`, 'm').exec(status)![1]!.trim();
    const caps = ((1n << BigInt(CAP_SYS_PTRACE)) | (1n << BigInt(CAP_DAC_READ_SEARCH))).toString(16).padStart(16, '0');
    expect(line('Uid').split(/\s+/)).toEqual(Array(4).fill(String(UNIT_UID)));
    expect({ eff: line('CapEff'), prm: line('CapPrm'), bnd: line('CapBnd'), amb: line('CapAmb') }).toEqual({ eff: caps, prm: caps, bnd: caps, amb: caps });
    expect(line('NoNewPrivs')).toBe('1');
    expect(line('Umask')).toBe(UNIT.umask.toString(8).padStart(4, '0'));
    expect(readFileSync(`/proc/${a.proc.pid}/limits`, 'utf8')).toMatch(new RegExp(`^Max open files\\s+${nofileLimit()}\\s+${nofileLimit()}`, 'm'));

    for (const [id, path] of [[0, '/root-workload'], [NOBODY, '/nobody'], [OTHER_UID, '/other']] as const) {
      const r = await fetchAs(a, id);
      expect(r.code, `uid ${id}: ${r.stderr}`).toBe(0);
      expect(field(r.stdout, 'SPIFFE ID')).toEqual([`spiffe://${TD}${path}`]);
    }
    expect(a.logs.filter((l) => /decision=denied/.test(l))).toEqual([]);
    expect(a.logs.filter((l) => /process exited|proc_denied|needs CAP_/.test(l))).toEqual([]);
  });
});

describe('the daemon as a plain user without capabilities (the quick start under a normal account)', () => {
  const plain: Privileges = { uid: PLAIN_UID, gid: PLAIN_UID, caps: [] };

  it('with discover_workload_path: tells callers of other uids which privilege it lacks, and still serves its own uid', async () => {
    const a = await start(plain, true, [
      entry('/own', `uid:${PLAIN_UID}`, `path:${NODE}`),
      entry('/root-workload', 'uid:0'),
      entry('/nobody', `uid:${NOBODY}`),
    ]);
    const own = await fetchAs(a, PLAIN_UID);
    expect(own.code, own.stderr).toBe(0);
    expect(field(own.stdout, 'SPIFFE ID')).toEqual([`spiffe://${TD}/own`]);

    for (const id of [0, NOBODY]) {
      const r = await fetchAs(a, id);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/code = FailedPrecondition/);
      expect(r.stderr).toMatch(new RegExp(`/exe: EACCES: the agent \\(uid ${PLAIN_UID}\\) needs CAP_SYS_PTRACE \\(the systemd unit grants it\\) or root`));
      expect(r.stderr).not.toMatch(/exited/);
    }
    // The operator reads the same reason in the log: the attestor's failure and the audited denial.
    expect(a.logs.filter((l) => /Workload attestor failed/.test(l) && /needs CAP_SYS_PTRACE/.test(l)).length).toBeGreaterThanOrEqual(2);
    expect(a.logs.filter((l) => /decision=denied/.test(l) && /needs CAP_SYS_PTRACE/.test(l))).toHaveLength(2);
    expect(a.logs.filter((l) => /process exited/.test(l))).toEqual([]);
  });

  it('without discover_workload_path: unix:uid and unix:gid need no privilege, so callers of other uids are served', async () => {
    const a = await start(plain, false, [
      entry('/own', `uid:${PLAIN_UID}`),
      entry('/root-workload', 'uid:0', 'gid:0'),
      entry('/nobody', `uid:${NOBODY}`, `gid:${NOBODY}`),
    ]);
    for (const [id, path] of [[PLAIN_UID, '/own'], [0, '/root-workload'], [NOBODY, '/nobody']] as const) {
      const r = await fetchAs(a, id);
      expect(r.code, `uid ${id}: ${r.stderr}`).toBe(0);
      expect(field(r.stdout, 'SPIFFE ID')).toEqual([`spiffe://${TD}${path}`]);
    }
  });
});
