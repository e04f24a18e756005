/** Who may use the Delegated Identity API, and which workload a request names. */
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import type { RegistrationEntry } from '../../../../src/authority/types.js';
import { decideDelegate, parseTarget } from '../../../../src/endpoints/admin/delegate-auth.js';
import { StatusError } from '../../../../src/endpoints/status.js';

const entry = (spiffeId: string): RegistrationEntry => ({ id: spiffeId, spiffeId } as unknown as RegistrationEntry);
const DELEGATE = 'spiffe://example.org/delegate';

describe('decideDelegate', () => {
  const cases: { name: string; entries: RegistrationEntry[]; authorized: string[]; ok: boolean; message?: string }[] = [
    { name: 'a caller matching no entry is denied with "no identity issued"', entries: [], authorized: [DELEGATE], ok: false, message: 'no identity issued' },
    { name: 'a caller whose IDs are not listed is denied', entries: [entry('spiffe://example.org/web')], authorized: [DELEGATE], ok: false, message: 'caller not configured as an authorized delegate' },
    { name: 'an empty authorized_delegates denies everyone', entries: [entry(DELEGATE)], authorized: [], ok: false, message: 'caller not configured as an authorized delegate' },
    { name: 'one listed ID among several entries is enough', entries: [entry('spiffe://example.org/web'), entry(DELEGATE)], authorized: [DELEGATE], ok: true },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const d = decideDelegate(c.entries, c.authorized);
      expect(d.ok).toBe(c.ok);
      if (d.ok) expect(d.delegate).toBe(DELEGATE);
      else expect(d.message).toBe(c.message);
    });
  }
});

describe('parseTarget', () => {
  const bad: { name: string; req: Parameters<typeof parseTarget>[0]; message: string }[] = [
    { name: 'both selectors and pid', req: { selectors: [{ type: 'unix', value: 'uid:1' }], pid: 12 }, message: 'cannot specify both selectors and pid' },
    { name: 'neither', req: {}, message: 'must specify either selectors or non-zero pid' },
    { name: 'empty selectors and pid 0', req: { selectors: [], pid: 0 }, message: 'must specify either selectors or non-zero pid' },
    { name: 'a negative pid', req: { pid: -4 }, message: 'invalid pid -4' },
    { name: 'a selector without a value', req: { selectors: [{ type: 'unix', value: '' }] }, message: 'could not parse provided selectors: selector type and value must be non-empty' },
  ];
  for (const c of bad) {
    it(`rejects ${c.name} with InvalidArgument`, () => {
      let err: unknown;
      try {
        parseTarget(c.req);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(StatusError);
      expect({ code: (err as StatusError).status, message: (err as StatusError).message }).toEqual({ code: grpc.status.INVALID_ARGUMENT, message: c.message });
    });
  }

  it('takes selectors verbatim', () => {
    expect(parseTarget({ selectors: [{ type: 'unix', value: 'uid:1000' }] })).toEqual({ kind: 'selectors', selectors: [{ type: 'unix', value: 'uid:1000' }] });
  });

  it('takes a pid', () => {
    expect(parseTarget({ pid: 4242 })).toEqual({ kind: 'pid', pid: 4242 });
  });
});
