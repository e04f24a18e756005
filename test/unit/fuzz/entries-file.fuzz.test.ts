/** The registration entries file: any text is entries or an EntriesFileError, and valid entries round-trip. */
import { describe, it, expect } from 'vitest';
import { EntriesFileError, parseEntriesFile, type EntryDefinition } from '../../../src/authority/embedded/entries-file.js';
import { fc, jsonishText, onlyTypedErrors, fuzz } from './fuzz.js';

const TD = 'example.org';
const KEYS = ['entry_id', 'entryId', 'spiffe_id', 'spiffeId', 'parent_id', 'parentId', 'selectors', 'x509_svid_ttl', 'jwt_svid_ttl', 'ttl', 'dns_names', 'hint', 'federates_with', 'admin', 'downstream', 'jwt_svid_include_jti', 'entry_expiry', 'store_svid', 'revision_number', 'created_at', '__proto__', 'constructor', 'toString'];

const segment = fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/).filter((s) => s !== '.' && s !== '..');
const spiffeId = (td: fc.Arbitrary<string>) => fc.tuple(td, fc.array(segment, { minLength: 1, maxLength: 3 })).map(([t, p]) => `spiffe://${t}/${p.join('/')}`);
const tdName = fc.stringMatching(/^[a-z0-9][a-z0-9.-]{0,15}$/);
const selector = fc.record({ type: fc.stringMatching(/^[a-z0-9_-]{1,8}$/), value: fc.string({ minLength: 1, maxLength: 20 }) });
const dnsName = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?){0,3}$/);

const validEntry = fc.record(
  {
    spiffe_id: spiffeId(fc.constant(TD)),
    parent_id: spiffeId(fc.oneof(fc.constant(TD), tdName)),
    selectors: fc.array(selector, { minLength: 1, maxLength: 4 }),
    x509_svid_ttl: fc.integer({ min: 0, max: 2_147_483_647 }),
    jwt_svid_ttl: fc.integer({ min: 0, max: 2_147_483_647 }),
    dns_names: fc.array(dnsName, { maxLength: 3 }),
    hint: fc.string({ maxLength: 10 }),
    federates_with: fc.array(tdName.filter((t) => t !== TD && !t.endsWith('.') && !t.endsWith('-')), { maxLength: 2 }),
    admin: fc.boolean(),
    downstream: fc.boolean(),
    jwt_svid_include_jti: fc.boolean(),
    entry_expiry: fc.constant(0),
  },
  { requiredKeys: ['spiffe_id', 'parent_id', 'selectors'] },
);

function serialize(d: EntryDefinition): Record<string, unknown> {
  return {
    entry_id: d.id,
    spiffe_id: d.spiffeId,
    parent_id: d.parentId,
    selectors: d.selectors,
    x509_svid_ttl: d.x509SvidTtl,
    jwt_svid_ttl: d.jwtSvidTtl,
    dns_names: d.dnsNames,
    hint: d.hint,
    federates_with: d.federatesWith,
    admin: d.admin,
    downstream: d.downstream,
    jwt_svid_include_jti: d.jwtSvidIncludeJti,
    entry_expiry: d.entryExpiry,
  };
}

describe('fuzz: entries file', () => {
  it('turns any text into entries or an EntriesFileError naming the file', () => {
    fuzz(
      fc.property(fc.oneof(jsonishText(), jsonishText().map((j) => `{"entries":[${j}]}`)), (text) => {
        onlyTypedErrors(() => parseEntriesFile('/f.json', text, TD), EntriesFileError);
      }),
      2000,
    );
  });

  it('turns entries with values of any type under any key into entries or an EntriesFileError', () => {
    const anyEntry = fc.dictionary(fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 8 })), fc.oneof(fc.jsonValue({ maxDepth: 3 }), selector, fc.array(selector)), { maxKeys: 8 });
    fuzz(
      fc.property(fc.array(fc.oneof(anyEntry, validEntry), { maxLength: 5 }), fc.boolean(), (entries, pretty) => {
        const text = JSON.stringify({ entries }, null, pretty ? 2 : undefined);
        const defs = onlyTypedErrors(() => parseEntriesFile('/f.json', text, TD), EntriesFileError);
        if (defs === undefined) {
          try {
            parseEntriesFile('/f.json', text, TD);
          } catch (err) {
            const e = err as EntriesFileError;
            expect(e.message).toContain('/f.json');
            expect(e.problems.length).toBeGreaterThan(0);
            // Every reported problem points at a line of the file (1 when the whole text is one line).
            for (const p of e.problems) expect(p.line).toBeGreaterThanOrEqual(p.path === '' ? 0 : 1);
          }
        }
      }),
      2000,
    );
  });

  it('round-trips valid entries: parse, write back, parse again gives the same definitions', () => {
    fuzz(
      fc.property(fc.uniqueArray(validEntry, { maxLength: 6, selector: (e) => e.spiffe_id }), (entries) => {
        const defs = parseEntriesFile('/f.json', JSON.stringify({ entries }), TD);
        expect(defs).toHaveLength(entries.length);
        const again = parseEntriesFile('/f.json', JSON.stringify({ entries: defs.map(serialize) }), TD);
        expect(again).toEqual(defs);
      }),
      500,
    );
  });
});
