/**
 * The StreamSecrets state machine (spire-agent's): version counts cache updates, a nonce per
 * response, stale nonces ignored, NACKs noted but used, a response due on a name change or an update
 * once there is both a request and an update, and a missing node taken from the previous request.
 */
import { describe, expect, it } from 'vitest';
import { SdsStreamState, namesChanged, newNonce } from '../../../../src/endpoints/sds/stream-state.js';

function machine(): SdsStreamState {
  let n = 0;
  return new SdsStreamState(() => `n${++n}`);
}

/** Sends what is due and returns [version, nonce, names], or undefined. */
function flush(s: SdsStreamState): [string, string, readonly string[] | undefined] | undefined {
  const due = s.due();
  if (!due) return undefined;
  s.sent(due.version, due.nonce);
  return [due.version, due.nonce, due.req.resource_names];
}

describe('SDS stream state', () => {
  it('makes nonces of 8 lowercase hex characters, fresh each time', () => {
    const seen = new Set(Array.from({ length: 50 }, () => newNonce()));
    for (const n of seen) expect(n).toMatch(/^[0-9a-f]{8}$/);
    expect(seen.size).toBeGreaterThan(45);
  });

  it('waits for both the first request and the first cache update, in either order', () => {
    const s = machine();
    expect(s.onRequest({ resource_names: ['default'] })).toEqual({ kind: 'accepted', nack: false, namesChanged: true });
    expect(flush(s)).toBeUndefined();
    s.onUpdate();
    expect(flush(s)).toEqual(['1', 'n1', ['default']]);

    const t = machine();
    t.onUpdate();
    t.onUpdate();
    expect(flush(t)).toBeUndefined();
    t.onRequest({ resource_names: [] });
    expect(flush(t)).toEqual(['2', 'n1', []]);
  });

  it('an ACK with the same names sends nothing; the next update is sent with a new version and nonce', () => {
    const s = machine();
    s.onUpdate();
    s.onRequest({ resource_names: ['default', 'ROOTCA'] });
    expect(flush(s)).toEqual(['1', 'n1', ['default', 'ROOTCA']]);
    expect(s.onRequest({ version_info: '1', response_nonce: 'n1', resource_names: ['ROOTCA', 'default'] })).toEqual({ kind: 'accepted', nack: false, namesChanged: false });
    expect(flush(s)).toBeUndefined();
    s.onUpdate();
    expect(flush(s)).toEqual(['2', 'n2', ['ROOTCA', 'default']]);
  });

  it('ignores a request with a stale nonce entirely, even one that changes the names', () => {
    const s = machine();
    s.onUpdate();
    s.onRequest({ resource_names: ['a'] });
    flush(s);
    s.onUpdate();
    flush(s);
    expect(s.onRequest({ version_info: '1', response_nonce: 'n1', resource_names: ['b'] })).toEqual({ kind: 'stale', expected: 'n2' });
    expect(s.onRequest({ version_info: '', response_nonce: '', resource_names: ['b'] })).toEqual({ kind: 'stale', expected: 'n2' });
    expect(flush(s)).toBeUndefined();
    s.onUpdate();
    expect(flush(s)?.[2]).toEqual(['a']);
  });

  it('notes a NACK (matching nonce, other or empty version) but still uses its names', () => {
    const s = machine();
    s.onUpdate();
    s.onRequest({ resource_names: ['a'] });
    flush(s);
    expect(s.onRequest({ version_info: '', response_nonce: 'n1', resource_names: ['a'] })).toMatchObject({ nack: true, namesChanged: false });
    expect(flush(s)).toBeUndefined();
    expect(s.onRequest({ version_info: '0', response_nonce: 'n1', resource_names: ['b'] })).toMatchObject({ nack: true, namesChanged: true });
    expect(flush(s)).toEqual(['1', 'n2', ['b']]);
  });

  it('compares an ACK with the version last sent, not a newer one not yet sent', () => {
    const s = machine();
    s.onUpdate();
    s.onRequest({ resource_names: ['a'] });
    flush(s);
    s.onUpdate(); // version 2 pending, not sent yet
    expect(s.onRequest({ version_info: '1', response_nonce: 'n1', resource_names: ['a'] })).toMatchObject({ kind: 'accepted', nack: false });
    expect(flush(s)).toEqual(['2', 'n2', ['a']]);
  });

  it('keeps the node of an earlier request when a later one leaves it out', () => {
    const s = machine();
    const node = { id: 'envoy-1', user_agent_build_version: { version: { major_number: 1, minor_number: 17 } } };
    s.onUpdate();
    s.onRequest({ node, resource_names: ['a'] });
    flush(s);
    s.onRequest({ version_info: '1', response_nonce: 'n1', resource_names: ['b'] });
    expect(s.due()?.req.node).toEqual(node);
  });

  it.each([
    { before: [], after: [], changed: false },
    { before: ['a', 'b'], after: ['b', 'a'], changed: false },
    { before: ['a'], after: ['a', 'b'], changed: true },
    { before: ['a', 'b'], after: ['a', 'c'], changed: true },
  ])('names $before -> $after changed: $changed', ({ before, after, changed }) => {
    expect(namesChanged(before, after)).toBe(changed);
  });
});
