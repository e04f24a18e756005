/**
 * The gRPC servers run without channelz: nothing serves it, and with it on grpc-js keeps a
 * channelz socket, call trackers and trace strings for every connection and call (memory held
 * by every open stream). Channelz is introspection only; nothing on the wire depends on it.
 */
import { describe, expect, it } from 'vitest';
import { GRPC_SERVER_OPTIONS, buildGrpcServer } from '../../../src/endpoints/server.js';

describe('gRPC server options', () => {
  it('turns channelz off for the public socket', () => {
    expect(GRPC_SERVER_OPTIONS['grpc.enable_channelz']).toBe(0);
    const server = buildGrpcServer({}, () => 'SERVING');
    // grpc-js decides at construction; with channelz on it uses its channelz session and stream handlers.
    expect((server as unknown as { channelzEnabled: boolean }).channelzEnabled).toBe(false);
  });

  it('bounds streams per connection and pings every connection (a dead or stalled one is closed within 15 s)', () => {
    expect(GRPC_SERVER_OPTIONS['grpc.max_concurrent_streams']).toBe(100);
    expect(GRPC_SERVER_OPTIONS['grpc.keepalive_permit_without_calls']).toBe(1);
    expect(GRPC_SERVER_OPTIONS['grpc.keepalive_time_ms']).toBe(10_000);
    expect(GRPC_SERVER_OPTIONS['grpc.keepalive_timeout_ms']).toBe(5_000);
  });
});
