/** Assembles the gRPC services served on the admin socket. */
import * as grpc from '@grpc/grpc-js';
import { loadProto } from '../proto.js';
import { GRPC_SERVER_OPTIONS } from '../server.js';
import type { OpenStreams } from '../open-streams.js';
import type { DebugHandler } from './debug.js';
import type { DelegatedIdentityHandler } from './delegated-identity.js';
import type { LoggerHandler } from './logger-service.js';

interface ServiceHolder {
  service: grpc.ServiceDefinition;
}

export interface AdminServices {
  readonly delegatedIdentity: DelegatedIdentityHandler;
  readonly debug: DebugHandler;
  /** Left out when the agent was given no way to change its log level. */
  readonly logger?: LoggerHandler | undefined;
}

/** `streams`, when given, tracks streaming calls so shutdown can end them (see open-streams.ts). */
export function buildAdminServer(services: AdminServices, streams?: OpenStreams): grpc.Server {
  const server = new grpc.Server(GRPC_SERVER_OPTIONS);
  const add = (def: grpc.ServiceDefinition, impl: grpc.UntypedServiceImplementation): void => server.addService(def, streams ? streams.track(def, impl) : impl);
  const di = loadProto('spire/api/agent/delegatedidentity/v1/delegatedidentity.proto') as unknown as {
    spire: { api: { agent: { delegatedidentity: { v1: Record<string, ServiceHolder> } } } };
  };
  add(di.spire.api.agent.delegatedidentity.v1.DelegatedIdentity!.service, services.delegatedIdentity.service());
  const debug = loadProto('spire/api/agent/debug/v1/debug.proto') as unknown as { spire: { agent: { debug: { v1: Record<string, ServiceHolder> } } } };
  add(debug.spire.agent.debug.v1.Debug!.service, services.debug.service());
  if (services.logger) {
    const lg = loadProto('spire/api/agent/logger/v1/logger.proto') as unknown as {
      spire: { api: { agent: { logger: { v1: Record<string, ServiceHolder> } } } };
    };
    add(lg.spire.api.agent.logger.v1.Logger!.service, services.logger.service());
  }
  return server;
}
