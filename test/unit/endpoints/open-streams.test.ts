/**
 * Shutdown ends streaming calls with UNAVAILABLE through the same 'error' event grpc-js
 * uses to send a handler's status, but never before a call's first answer. The calls here are
 * EventEmitters with a write() standing in for grpc-js server streams (a fake: the real ones
 * are exercised in test/integration/shutdown.test.ts and socket-activation-restarts.test.ts).
 */
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { OpenStreams } from '../../../src/endpoints/open-streams.js';

const method = (responseStream: boolean, originalName?: string) =>
  ({ path: '/x', requestStream: false, responseStream, originalName, requestSerialize: () => Buffer.alloc(0), requestDeserialize: () => ({}), responseSerialize: () => Buffer.alloc(0), responseDeserialize: () => ({}) }) as unknown as grpc.MethodDefinition<unknown, unknown>;

/** A server stream: messages written, and the errors (statuses) grpc-js would send after them, in order. */
class FakeCall extends EventEmitter {
  readonly sent: unknown[] = [];
  constructor() {
    super();
    this.on('error', (e) => this.sent.push(e));
  }
  write(msg: unknown): boolean {
    this.sent.push(msg);
    return true;
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('OpenStreams', () => {
  const def = { Watch: method(true, 'watch'), Get: method(false) } as unknown as grpc.ServiceDefinition;

  it('ends at once every open stream that has answered, with UNAVAILABLE, and leaves unary handlers alone', () => {
    const streams = new OpenStreams();
    const seen: FakeCall[] = [];
    const unary = (): void => {};
    const impl = streams.track(def, { Watch: (call: FakeCall) => void seen.push(call), Get: unary } as unknown as grpc.UntypedServiceImplementation);
    expect(impl.Get).toBe(unary);
    const calls = [new FakeCall(), new FakeCall()];
    for (const c of calls) {
      (impl.Watch as unknown as (c: FakeCall) => void)(c);
      c.write('svid');
    }
    expect(seen).toEqual(calls);
    expect(streams.size).toBe(2);
    expect(streams.endAll()).toBe(2);
    expect(calls[0]!.sent).toMatchObject(['svid', { code: grpc.status.UNAVAILABLE, details: expect.stringMatching(/shutting down/) }]);
    expect(calls[1]!.sent).toHaveLength(2);
    expect(streams.size).toBe(0);
  });

  it('a stream still waiting for its first answer gets it, then UNAVAILABLE', async () => {
    const streams = new OpenStreams();
    const impl = streams.track(def, { watch: () => undefined } as unknown as grpc.UntypedServiceImplementation);
    const call = new FakeCall();
    (impl.watch as unknown as (c: FakeCall) => void)(call);
    expect(streams.endAll()).toBe(0);
    expect(streams.unanswered).toBe(1);
    await tick();
    expect(call.sent).toEqual([]);
    call.write('svid');
    call.write('bundle'); // same turn: still sent before the end
    await tick();
    expect(call.sent).toMatchObject(['svid', 'bundle', { code: grpc.status.UNAVAILABLE }]);
    expect(streams.size).toBe(0);
  });

  it('endRemaining ends a stream that never answered, with UNAVAILABLE', () => {
    const streams = new OpenStreams();
    const impl = streams.track(def, { watch: () => undefined } as unknown as grpc.UntypedServiceImplementation);
    const call = new FakeCall();
    (impl.watch as unknown as (c: FakeCall) => void)(call);
    streams.endAll();
    expect(call.sent).toEqual([]);
    expect(streams.endRemaining()).toBe(1);
    expect(call.sent).toMatchObject([{ code: grpc.status.UNAVAILABLE }]);
    expect(streams.size).toBe(0);
  });

  it('forgets streams that ended by themselves, and serves one opened after shutdown began until its first answer', async () => {
    const streams = new OpenStreams();
    let started = 0;
    const impl = streams.track(def, { watch: () => void started++ } as unknown as grpc.UntypedServiceImplementation);
    const done = new FakeCall();
    (impl.watch as unknown as (c: FakeCall) => void)(done);
    done.emit('cancelled');
    expect(streams.size).toBe(0);
    streams.endAll();
    const late = new FakeCall();
    (impl.watch as unknown as (c: FakeCall) => void)(late);
    expect(started).toBe(2);
    expect(late.sent).toEqual([]);
    late.write('svid');
    await tick();
    expect(late.sent).toMatchObject(['svid', { code: grpc.status.UNAVAILABLE }]);
  });
});
