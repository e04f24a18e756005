/**
 * Which connection gives way when a bounded HTTP listener (src/net/bounded-http-server.ts) is full,
 * turn by turn of the event loop.
 *
 * FAKE SOCKETS: the rule depends on which connections the kernel hands over in one event-loop turn
 * and when their reads run, which a test cannot arrange with real loopback connections (their
 * accepts and reads land in whatever poll phase the kernel reports them). So connections are
 * handed to the server's 'connection' listener directly, as net.Server does after accept(2), as
 * FakeSocket objects with just the net.Socket methods the responder calls; a request "in its socket"
 * is a 'data' event emitted after the accepts of its turn, where a real read would come.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createBoundedHttpServer, MAX_HTTP_CONNECTIONS, type HttpAnswer } from '../../../src/net/bounded-http-server.js';

class FakeSocket extends EventEmitter {
  destroyed = false;
  answer = '';
  constructor(readonly name: string) {
    super();
  }
  setTimeout(): this {
    return this;
  }
  pause(): this {
    return this;
  }
  end(chunk?: Buffer): this {
    this.answer += chunk?.toString('latin1') ?? '';
    return this;
  }
  destroySoon(): void {
    this.destroy();
  }
  destroy(): this {
    if (!this.destroyed) {
      this.destroyed = true;
      this.emit('close');
    }
    return this;
  }
  /** The bytes a read of the socket would deliver. */
  request(text: string): void {
    this.emit('data', Buffer.from(text, 'latin1'));
  }
}

/** The next event-loop turn: the check phase after this one's, past a poll phase. */
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));
/** Enough for every connection accepted so far to be judged: two turns, as the responder counts them. */
const twoTurns = async (): Promise<void> => {
  await nextTurn();
  await nextTurn();
};

function listener(max = MAX_HTTP_CONNECTIONS, handle: () => HttpAnswer | Promise<HttpAnswer> = () => ({ status: 200, body: 'ok' })) {
  const server = createBoundedHttpServer(handle, () => {}, max);
  const accept = (name: string): FakeSocket => {
    const s = new FakeSocket(name);
    server.emit('connection', s as unknown as Socket);
    return s;
  };
  const acceptMany = (prefix: string, n: number): FakeSocket[] => Array.from({ length: n }, (_, i) => accept(`${prefix}${i}`));
  return { accept, acceptMany };
}
const names = (socks: FakeSocket[]): string[] => socks.filter((s) => s.destroyed).map((s) => s.name);

describe('bounded HTTP listener: who gives way when full', () => {
  it('a burst accepted in one turn does not close the scrape accepted first in it, whose request is already in its socket', async () => {
    const { accept, acceptMany } = listener();
    const scrape = accept('scrape');
    const burst = acceptMany('flood', MAX_HTTP_CONNECTIONS + 20);
    // The scrape's read runs after its turn's accepts.
    await nextTurn();
    scrape.request('GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n');
    await nextTurn();
    expect(scrape.destroyed).toBe(false);
    expect(scrape.answer).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nok$/);
    // Nobody in that turn could be judged silent: the 21 past the bound were refused, the rest kept.
    expect(names(burst)).toEqual(burst.slice(MAX_HTTP_CONNECTIONS - 1).map((s) => s.name));
  });

  it('the oldest connection silent for two turns gives way, first ones first, then newcomers are refused while the rest are young', async () => {
    const { accept, acceptMany } = listener();
    const old = acceptMany('old', 4);
    await twoTurns();
    const young = acceptMany('young', MAX_HTTP_CONNECTIONS - 4);
    const scrape = accept('scrape'); // full now: old0 gives way
    expect(names(old)).toEqual(['old0']);
    const burst = acceptMany('flood', 6); // old1..old3, then the last three refused
    expect(names(old)).toEqual(['old0', 'old1', 'old2', 'old3']);
    expect(names(burst)).toEqual(['flood3', 'flood4', 'flood5']);
    expect(names(young)).toEqual([]);
    expect(scrape.destroyed).toBe(false);
    // Two turns later the young ones are silent long enough: the oldest of them gives way.
    await twoTurns();
    const late = accept('late');
    expect(names(young)).toEqual(['young0']);
    expect(late.destroyed).toBe(false);
  });

  it('a quiet spell does not keep old silent connections young: the first newcomer after it gets a slot', async () => {
    const { accept, acceptMany } = listener(4);
    const held = acceptMany('held', 4);
    for (let i = 0; i < 5; i++) await nextTurn();
    const scrape = accept('scrape');
    expect(names(held)).toEqual(['held0']);
    expect(scrape.destroyed).toBe(false);
  });

  it('refuses the newcomer when every other connection is being answered', async () => {
    // A handler that never answers keeps each connection being answered.
    const { accept, acceptMany } = listener(3, () => new Promise<never>(() => {}));
    const busy = acceptMany('busy', 3);
    busy.forEach((s) => s.request('GET /slow HTTP/1.1\r\n\r\n'));
    await twoTurns();
    const newcomer = accept('newcomer');
    expect(newcomer.destroyed).toBe(true);
    expect(names(busy)).toEqual([]);
  });
});
