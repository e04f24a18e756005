/** /proc/<pid>/status and stat, /proc/<pid>/cgroup and mountinfo: typed errors only, known fields found. */
import { describe, it, expect } from 'vitest';
import { parseStatStartTime, parseStatus } from '../../../src/proc/proc-reader.js';
import { ProcError } from '../../../src/proc/errors.js';
import {
  ContainerInfoError,
  extractFromCgroups,
  extractFromMountinfo,
  extractFromPath,
  parseCgroupFile,
  parseMountinfo,
  podmanSocketFor,
} from '../../../src/proc/container-info.js';
import { fc, onlyTypedErrors, fuzz } from './fuzz.js';

const procText = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.string({ unit: fc.constantFrom(...'0123456789:/ \n\t-()abcdef'.split('')), maxLength: 300 }),
  fc.array(fc.tuple(fc.constantFrom('Name', 'Uid', 'Gid', 'Groups', 'Pid', 'x'), fc.string({ maxLength: 30 })), { maxLength: 8 }).map((l) => l.map(([k, v]) => `${k}:\t${v}`).join('\n')),
);
const id32 = fc.integer({ min: 0, max: 0xffff_ffff });
const hex64 = fc.stringMatching(/^[0-9a-f]{64}$/);
const uuid = fc.uuid();
const segment = fc.oneof(fc.stringMatching(/^[A-Za-z0-9._:-]{1,20}$/), hex64, uuid.map((u) => `pod${u}`));
const cgroupPath = fc.array(segment, { maxLength: 6 }).map((s) => `/${s.join('/')}`);

describe('fuzz: /proc parsers', () => {
  it('parseStatus returns numeric ids or throws ProcError, for any text', () => {
    fuzz(
      fc.property(procText, (text) => {
        const s = onlyTypedErrors(() => parseStatus(text, 42), ProcError);
        if (s) for (const v of [s.uid, s.gid, s.realUid, s.realGid, ...s.groups]) expect(Number.isSafeInteger(v) && v >= 0, `id ${v} from ${JSON.stringify(text)}`).toBe(true);
      }),
      2000,
    );
  });

  it('parseStatus reads back the effective and real ids written by the kernel', () => {
    fuzz(
      fc.property(fc.string({ maxLength: 15 }), fc.array(id32, { minLength: 4, maxLength: 4 }), fc.array(id32, { minLength: 4, maxLength: 4 }), fc.array(id32, { maxLength: 5 }), (name, uids, gids, groups) => {
        const text = `Name:\t${name.replace(/\n/g, '\\n')}\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t${uids.join('\t')}\nGid:\t${gids.join('\t')}\nGroups:\t${groups.join(' ')} \n`;
        expect(parseStatus(text, 1)).toMatchObject({ uid: uids[1], realUid: uids[0], gid: gids[1], realGid: gids[0], groups });
      }),
      500,
    );
  });

  it('parseStatStartTime finds field 22 whatever the command name, or throws ProcError', () => {
    fuzz(
      fc.property(procText, (text) => void onlyTypedErrors(() => parseStatStartTime(text, 42), ProcError)),
      2000,
    );
    fuzz(
      fc.property(fc.string({ maxLength: 16 }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (comm, start) => {
        const before = Array.from({ length: 18 }, (_, i) => String(i));
        const text = `123 (${comm}) S ${before.join(' ')} ${start} 4 5 6\n`;
        expect(parseStatStartTime(text, 123)).toBe(start);
      }),
      500,
    );
  });
});

describe('fuzz: cgroup and mountinfo parsers', () => {
  it('cgroup text gives container info or ContainerInfoError', () => {
    fuzz(
      fc.property(fc.oneof(procText, fc.array(fc.tuple(fc.nat(12), fc.string({ maxLength: 10 }), cgroupPath), { maxLength: 5 }).map((l) => l.map(([h, c, p]) => `${h}:${c}:${p}`).join('\n'))), (text) => {
        onlyTypedErrors(() => parseCgroupFile(text), ContainerInfoError);
        onlyTypedErrors(() => extractFromCgroups(text), ContainerInfoError);
        onlyTypedErrors(() => podmanSocketFor(text), ContainerInfoError);
      }),
      2000,
    );
  });

  it('mountinfo text gives container info or ContainerInfoError', () => {
    const line = fc.tuple(fc.nat(99), fc.nat(99), cgroupPath, cgroupPath, fc.constantFrom('cgroup', 'cgroup2', 'ext4', ''), fc.string({ maxLength: 8 })).map(([a, b, root, mp, fs, opt]) => `${a} ${b} 0:1 ${root} ${mp} rw - ${fs} ${opt} rw`);
    fuzz(
      fc.property(fc.oneof(procText, fc.array(line, { maxLength: 5 }).map((l) => l.join('\n'))), (text) => {
        onlyTypedErrors(() => parseMountinfo(text), ContainerInfoError);
        onlyTypedErrors(() => extractFromMountinfo(text), ContainerInfoError);
      }),
      2000,
    );
  });

  it('finds a container id and pod UID placed in a cgroup path', () => {
    fuzz(
      fc.property(fc.array(fc.stringMatching(/^[a-z.]{1,10}$/), { maxLength: 3 }), uuid, hex64, fc.constantFrom('-', '_'), (prefix, pod, cid, sep) => {
        const path = `/${[...prefix, `kubepods-pod${pod.replaceAll('-', sep)}.slice`, `cri-containerd-${cid}.scope`].join('/')}`;
        expect(extractFromPath(path)).toEqual({ containerId: cid, podUid: pod });
        expect(extractFromCgroups(`0::${path}\n`)).toEqual({ containerId: cid, podUid: pod });
      }),
      500,
    );
  });
});
