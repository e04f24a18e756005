/**
 * Shutdown ends streaming calls with UNAVAILABLE through the same 'error' event grpc-js
 * uses to send a handler's status. The calls here are plain EventEmitters standing in for
 * grpc-js server streams (a fake: the real ones are exercised in test/integration/shutdown.test.ts).
 */
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { OpenStreams } from '../../../src/endpoints/open-streams.js';

const method = (responseStream: boolean, originalName?: string) =>
  ({ path: '/x', requestStream: false, responseStream, originalName, requestSerialize: () => Buffer.alloc(0), requestDeserialize: () => ({}), responseSerialize: () => Buffer.alloc(0), responseDeserialize: () => ({}) }) as unknown as grpc.MethodDefinition<unknown, unknown>;

describe('OpenStreams', () => {
  const def = { Watch: method(true, 'watch'), Get: method(false) } as unknown as grpc.ServiceDefinition;

  it('ends every open stream with UNAVAILABLE and leaves unary handlers alone', () => {
    const streams = new OpenStreams();
    const seen: EventEmitter[] = [];
    const unary = (): void => {};
    const impl = streams.track(def, { Watch: (call: EventEmitter) => void seen.push(call), Get: unary } as unknown as grpc.UntypedServiceImplementation);
    expect(impl.Get).toBe(unary);
    const calls = [new EventEmitter(), new EventEmitter()];
    const errors: unknown[] = [];
    for (const c of calls) {
      c.on('error', (e) => errors.push(e));
      (impl.Watch as unknown as (c: EventEmitter) => void)(c);
    }
    expect(seen).toEqual(calls);
    expect(streams.size).toBe(2);
    expect(streams.endAll()).toBe(2);
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatchObject({ code: grpc.status.UNAVAILABLE, details: expect.stringMatching(/shutting down/) });
    expect(streams.size).toBe(0);
  });

  it('forgets streams that ended by themselves, and refuses new ones once shutdown began', () => {
    const streams = new OpenStreams();
    let started = 0;
    const impl = streams.track(def, { watch: () => void started++ } as unknown as grpc.UntypedServiceImplementation);
    const done = new EventEmitter();
    (impl.watch as unknown as (c: EventEmitter) => void)(done);
    done.emit('cancelled');
    expect(streams.size).toBe(0);
    streams.endAll();
    const late = new EventEmitter();
    const errors: unknown[] = [];
    late.on('error', (e) => errors.push(e));
    (impl.watch as unknown as (c: EventEmitter) => void)(late);
    expect(started).toBe(1);
    expect(errors).toMatchObject([{ code: grpc.status.UNAVAILABLE }]);
  });
});
