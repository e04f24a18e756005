/**
 * One gRPC channel to the SPIRE server and the four service clients on it. The service
 * definitions come from proto/ (agent: this session's; entry, svid, bundle: the server
 * authority's). A proto not present yet gives a bare client, so the session still works
 * for attestation and renewal.
 */
import * as grpc from '@grpc/grpc-js';
import { loadServiceDefinitions } from '../../proto/load.js';
import type { ServerClients } from './session.js';

const SERVICES = {
  agent: 'spire.api.server.agent.v1.Agent',
  entry: 'spire.api.server.entry.v1.Entry',
  svid: 'spire.api.server.svid.v1.SVID',
  bundle: 'spire.api.server.bundle.v1.Bundle',
} as const;

type Ctor = new (address: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => grpc.Client;

/** Loaded once per session (the proto files do not change while the agent runs). */
export function loadServiceConstructors(): Record<keyof ServerClients, Ctor> {
  const defs = loadServiceDefinitions('spire-server');
  const out = {} as Record<keyof ServerClients, Ctor>;
  for (const [name, service] of Object.entries(SERVICES) as [keyof ServerClients, string][]) {
    const def = defs.get(service);
    out[name] = def ? (grpc.makeGenericClientConstructor(def, service) as unknown as Ctor) : (grpc.Client as unknown as Ctor);
  }
  return out;
}

/** Target spire-agent dials: host:port (IPv6 literals bracketed). */
export function serverTarget(address: string, port: number): string {
  return address.includes(':') && !address.startsWith('[') ? `[${address}]:${port}` : `${address}:${port}`;
}

export interface ServerChannel extends ServerClients {
  close(): void;
}

/**
 * `sniName`: Node refuses (and warns about) an IP address as TLS server name, where Go simply
 * sends none; for an IP target the session passes a DNS name instead (the trust domain). The
 * server ignores SNI and the identity check does not use it.
 */
export function openServerChannel(ctors: Record<keyof ServerClients, Ctor>, target: string, creds: grpc.ChannelCredentials, sniName?: string): ServerChannel {
  const options: grpc.ChannelOptions = {
    'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
    'grpc.service_config_disable_resolution': 1,
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    ...(sniName ? { 'grpc.ssl_target_name_override': sniName } : {}),
  };
  const agent = new ctors.agent(target, creds, options);
  const channelOverride = agent.getChannel() as grpc.Channel;
  const on = (c: Ctor) => new c(target, creds, { ...options, channelOverride });
  return { agent, entry: on(ctors.entry), svid: on(ctors.svid), bundle: on(ctors.bundle), close: () => agent.close() };
}

/** Raw unary call for messages the session decodes itself (see ./wire.ts). */
export function rawUnary(client: grpc.Client, path: string, request: Uint8Array, deadlineMs: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest<Uint8Array, Uint8Array>(
      path,
      (b) => Buffer.from(b),
      (b) => new Uint8Array(b),
      request,
      new grpc.Metadata(),
      { deadline: Date.now() + deadlineMs },
      (err, res) => (err ? reject(err) : resolve(res as Uint8Array)),
    );
  });
}
