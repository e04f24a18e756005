/**
 * The agent's own trust bundle and the federated bundles its entries name, fetched after each
 * entry sync as spire-agent does: GetBundle, then GetFederatedBundle per trust domain (a few at
 * a time); a federated bundle the server does not have is skipped with a warning, any other
 * failure fails the sync so the previous bundles stay in effect.
 */
import * as grpc from '@grpc/grpc-js';
import type { TrustBundle } from '../../domain/types.js';
import type { Logger } from '../../telemetry/logger.js';
import { F } from '../../telemetry/names.js';
import { ServerAuthorityError } from './authority-errors.js';
import { bundleFromProto, type BundleMessage } from './convert.js';
import { SERVER_CALL_TIMEOUT_MS, unary } from './rpc.js';

const FEDERATED_PARALLEL = 10;

export interface FetchedBundles {
  readonly own: TrustBundle;
  readonly federated: ReadonlyMap<string, TrustBundle>;
}

export async function fetchBundles(
  client: grpc.Client,
  ownTrustDomain: string,
  federatedTDs: readonly string[],
  log: Logger,
  timeoutMs = SERVER_CALL_TIMEOUT_MS,
): Promise<FetchedBundles> {
  const ownMsg = await unary<BundleMessage>(client, 'GetBundle', {}, timeoutMs);
  let own: TrustBundle;
  try {
    own = bundleFromProto(ownMsg);
  } catch (err) {
    throw new ServerAuthorityError('bundle_malformed', `server-authority: malformed bundle from the SPIRE server: ${(err as Error).message}`);
  }
  if (own.trustDomain !== ownTrustDomain) {
    throw new ServerAuthorityError('bundle_wrong_trust_domain', `server-authority: the SPIRE server sent the bundle of ${own.trustDomain}, but this agent is in ${ownTrustDomain}; check trust_domain`);
  }
  const federated = new Map<string, TrustBundle>();
  const todo = federatedTDs.filter((td) => td !== ownTrustDomain);
  for (let i = 0; i < todo.length; i += FEDERATED_PARALLEL) {
    const slice = todo.slice(i, i + FEDERATED_PARALLEL);
    const results = await Promise.allSettled(slice.map((td) => unary<BundleMessage>(client, 'GetFederatedBundle', { trust_domain: td }, timeoutMs)));
    results.forEach((r, j) => {
      const td = slice[j] as string;
      if (r.status === 'fulfilled') {
        try {
          federated.set(td, bundleFromProto(r.value));
        } catch (err) {
          log.warn({ [F.trustDomain]: td, [F.error]: (err as Error).message }, 'Received malformed bundle from SPIRE server; are the server and agent versions compatible?');
        }
        return;
      }
      const err = r.reason as Partial<grpc.ServiceError>;
      if (err.code === grpc.status.NOT_FOUND) {
        log.warn({ [F.trustDomain]: td }, 'Federated bundle not found');
        return;
      }
      throw r.reason;
    });
  }
  return { own, federated };
}
