/**
 * Files written by the real spire-agent v1.13.3 (test/fixtures/spire-agent-v1.13.3: a join_token
 * agent's data_dir, captured from a throwaway server) read and re-encoded byte for byte.
 */
import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { decodeAgentData, encodeAgentData } from '../../../../src/authority/server/agent-storage.js';
import { findKeyForSVID, leafInfo } from '../../../../src/authority/server/agent-svid.js';
import { decodeKeysFile, encodeKeysFile } from '../../../../src/keymanager/disk.js';

const dir = new URL('../../../fixtures/spire-agent-v1.13.3/', import.meta.url);

describe('data_dir written by spire-agent v1.13.3', () => {
  it('agent-data.json decodes and re-encodes to the same bytes', async () => {
    const text = await readFile(new URL('agent-data.json', dir), 'utf8');
    const d = decodeAgentData(text, 'agent-data.json');
    expect(d.svid).toHaveLength(1);
    expect(d.bundle.length).toBeGreaterThan(0);
    expect(d.bootstrap.use).toBe(2);
    expect(leafInfo(d.svid[0]!).spiffeId).toMatch(/^spiffe:\/\/example\.org\/spire\/agent\/join_token\//);
    expect(encodeAgentData(d)).toBe(text);
  });

  it('keys.json decodes, holds the SVID key in slot A, and re-encodes to the same bytes', async () => {
    const text = await readFile(new URL('keys.json', dir), 'utf8');
    const keys = decodeKeysFile(text, 'keys.json');
    expect(encodeKeysFile(keys.values())).toBe(text);
    const d = decodeAgentData(await readFile(new URL('agent-data.json', dir), 'utf8'), 'agent-data.json');
    expect(findKeyForSVID([...keys.values()], d.svid[0])?.id).toBe('agent-svid-A');
  });
});
