/**
 * The error table (src/endpoints/status.ts) and README "Errors" say the same thing, row for row,
 * as fastify tests its error docs; and toServiceError answers with the table's status.
 */
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { STATUS, StatusError, statusOf, toServiceError } from '../../../src/endpoints/status.js';
import { SpiffeAgentError } from '../../../src/errors.js';
import { PeerError, ProcError } from '../../../src/proc/errors.js';
import { AttestationError } from '../../../src/attestation/workload/attest.js';
import { JWTSVIDError } from '../../../src/svid/errors.js';

const README = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../../../README.md'), 'utf8');

/** "FAILED_PRECONDITION" → "FailedPrecondition", as gRPC's docs and the README write them. */
function statusName(s: grpc.status): string {
  return (grpc.status[s] ?? '').toLowerCase().replace(/(^|_)([a-z])/g, (_, __, c: string) => c.toUpperCase());
}

function readmeRows(): { code: string; status: string; meaning: string; todo: string }[] {
  const start = README.indexOf('\n## Errors\n');
  expect(start, 'README has an "## Errors" section').toBeGreaterThan(0);
  const end = README.indexOf('\n## ', start + 1);
  const rows = README.slice(start, end < 0 ? undefined : end).split('\n').filter((l) => l.startsWith('| `'));
  return rows.map((l) => {
    const cells = l.split(' | ').map((c) => c.replace(/^\| ?| ?\|$/g, '').trim());
    return { code: cells[0]!.replace(/`/g, ''), status: cells[1]!, meaning: cells[2] ?? '', todo: cells[3] ?? '' };
  });
}

describe('README "Errors" and the error table agree', () => {
  const rows = readmeRows();
  const documented = rows.filter((r) => r.code !== 'grpc_<status>');

  it('lists every code of the table, once', () => {
    const codes = documented.map((r) => r.code);
    expect(new Set(codes).size).toBe(codes.length);
    expect([...codes].sort()).toEqual(Object.keys(STATUS).sort());
  });

  it('gives each code the status the table gives it', () => {
    const table = Object.fromEntries(Object.entries(STATUS).map(([code, s]) => [code, statusName(s)]));
    expect(Object.fromEntries(documented.map((r) => [r.code, r.status]))).toEqual(table);
  });

  it('says for each code what it means and what to do', () => {
    for (const r of rows) {
      expect(r.meaning, r.code).not.toBe('');
      expect(r.todo, r.code).not.toBe('');
    }
  });

  it('documents StatusError, whose code carries its own status', () => {
    expect(rows.map((r) => r.code)).toContain('grpc_<status>');
    expect(new StatusError(grpc.status.INVALID_ARGUMENT, 'x').code).toBe('grpc_invalid_argument');
  });
});

describe('toServiceError answers with the status of the table', () => {
  it.each([
    ['an exited caller', new PeerError('caller_gone', 'peertracker: gone'), grpc.status.UNAUTHENTICATED],
    ['every attestor failed', new AttestationError('attestation_failed', 'x'), grpc.status.UNAVAILABLE],
    ['a refused workload', new AttestationError('workload_refused', 'x'), grpc.status.FAILED_PRECONDITION],
    ['a pid that does not exist', new AttestationError('workload_gone', 'x'), grpc.status.NOT_FOUND],
    ['an invalid JWT-SVID', new JWTSVIDError('expired', 'jwtsvid: expired'), grpc.status.INVALID_ARGUMENT],
    ['a /proc read failure', new ProcError('proc_read', 'proc: EACCES'), grpc.status.INTERNAL],
    ['a StatusError', new StatusError(grpc.status.PERMISSION_DENIED, 'no identity issued'), grpc.status.PERMISSION_DENIED],
    ['an error that is not ours', new TypeError('boom'), grpc.status.INTERNAL],
    ['a thrown string', 'boom', grpc.status.INTERNAL],
  ])('%s', (_, err, status) => {
    expect(statusOf(err)).toBe(status);
    const e = toServiceError(err);
    expect(e).toEqual({ code: status, details: err instanceof Error ? err.message : String(err), message: err instanceof Error ? err.message : String(err) });
  });

  it('gives a code the table does not know (from a build that is not type-checked) Internal', () => {
    expect(statusOf(new SpiffeAgentError('no_such_code' as never, 'x'))).toBe(grpc.status.INTERNAL);
  });
});
