/**
 * The daemon's logger with `batch`: the lines of one event-loop turn reach the destination in one
 * write after the turn, with the same content and order as unbatched, and flush() writes at once.
 */
import { Writable } from 'node:stream';
import { setImmediate as turn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createControlledLogger, type LogFormat } from '../../../src/telemetry/logger.js';
import { AuditLog } from '../../../src/telemetry/audit.js';

function sink(): { stream: Writable; writes: string[] } {
  const writes: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      writes.push(chunk.toString());
      cb();
    },
  });
  return { stream, writes };
}

/** Three lines (log, audit, log) as the daemon writes them, with the time field removed. */
async function emit(format: LogFormat, batch: boolean): Promise<{ writes: string[]; beforeTurn: number; text: string }> {
  const s = sink();
  const { log, audit, flush } = createControlledLogger({ level: 'info', format, destination: s.stream, batch });
  const records = new AuditLog(audit, ['unix']);
  log.info({ pid: 1 }, 'first');
  records.record({ method: 'FetchX509SVID', caller: { pid: 2, uid: 1000, gid: 1000, binary: '/bin/x' }, decision: 'granted', selectors: [{ type: 'unix', value: 'uid:1000' }] });
  log.warn({ token: 'secret-token' }, 'third');
  const beforeTurn = s.writes.length;
  await turn();
  flush();
  process.off('exit', flush);
  const text = s.writes.join('').replace(/time="[^"]*"/g, 'time=T').replace(/"time":\d+/g, '"time":0');
  return { writes: s.writes, beforeTurn, text };
}

describe('logger: batched writes', () => {
  for (const format of ['text', 'json'] as const) {
    it(`${format}: one write after the turn, the same lines in the same order as unbatched`, async () => {
      const batched = await emit(format, true);
      const plain = await emit(format, false);
      expect(batched.beforeTurn).toBe(0);
      expect(batched.writes).toHaveLength(1);
      expect(plain.writes).toHaveLength(3);
      expect(batched.text).toBe(plain.text);
      expect(batched.text.split('\n').filter(Boolean)).toHaveLength(3);
      expect(batched.text).not.toContain('secret-token');
    });
  }

  it('flush() writes what is pending at once, and a later turn writes nothing twice', async () => {
    const s = sink();
    const { log, flush } = createControlledLogger({ level: 'info', format: 'text', destination: s.stream, batch: true });
    log.info('before exit');
    flush();
    expect(s.writes).toHaveLength(1);
    expect(s.writes[0]).toContain('msg="before exit"');
    await turn();
    expect(s.writes).toHaveLength(1);
    process.off('exit', flush);
  });
});
