/**
 * Which Secrets a DiscoveryRequest gets, by resource name, as spire-agent decides:
 * an SVID by its SPIFFE ID or the default-SVID name (first identity), a trust domain's
 * bundle by its ID, the own bundle by the default-bundle name, every bundle the caller
 * may see by the all-bundles name, everything for an empty list. Any name left over is
 * a request the caller is not entitled to: InvalidArgument.
 */
import * as grpc from '@grpc/grpc-js';
import type { TrustBundle } from '../../authority/types.js';
import type { WorkloadView } from '../../cache/manager.js';
import { StatusError } from '../status.js';
import { spiffeValidatorSecret, tlsCertificateSecret, trustedCaSecret, type SecretResource } from './encode.js';
import type { DiscoveryRequest, NodeMessage, ProtoValue } from './messages.js';

export interface SdsNames {
  readonly defaultSvidName: string;
  readonly defaultBundleName: string;
  readonly defaultAllBundlesName: string;
  /** Agent-wide `sds { disable_spiffe_cert_validation }`; node metadata may override it. */
  readonly disableSpiffeCertValidation: boolean;
}

export const DISABLE_SPIFFE_CERT_VALIDATION_KEY = 'disable_spiffe_cert_validation';

/** Envoy before 1.18 has no SPIFFE certificate validator; a node without a build version is assumed to. */
export function supportsSpiffeValidator(node: NodeMessage | null | undefined): boolean {
  const v = node?.user_agent_build_version?.version;
  if (!node?.user_agent_build_version || !v) return true;
  const major = v.major_number ?? 0;
  const minor = v.minor_number ?? 0;
  return major > 1 || (major === 1 && minor > 17);
}

/** Go's strconv.ParseBool, which SPIRE applies to a string-valued metadata flag. */
function parseGoBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  return undefined;
}

/** The node's metadata flag wins over the agent setting; a value that is not a boolean is ignored. */
export function spiffeValidationDisabled(node: NodeMessage | null | undefined, agentDefault: boolean): boolean {
  const v: ProtoValue | undefined = node?.metadata?.fields?.[DISABLE_SPIFFE_CERT_VALIDATION_KEY];
  if (v) {
    if (v.kind === 'boolValue' || (v.kind === undefined && typeof v.boolValue === 'boolean')) return v.boolValue === true;
    if (v.kind === 'stringValue' || (v.kind === undefined && typeof v.stringValue === 'string')) {
      const parsed = parseGoBool(v.stringValue ?? '');
      if (parsed !== undefined) return parsed;
    }
  }
  return agentDefault;
}

function tdId(td: string): string {
  return `spiffe://${td}`;
}

/** Go's %q of a []string, so the message reads as spire-agent's does. */
function quoteList(names: readonly string[]): string {
  return `[${names.map((n) => JSON.stringify(n)).join(' ')}]`;
}

export function resolveSecrets(req: DiscoveryRequest, view: WorkloadView, cfg: SdsNames): SecretResource[] {
  const names = new Set((req.resource_names ?? []).filter((n) => n !== ''));
  const all = names.size === 0;
  const spiffe = supportsSpiffeValidator(req.node) && !spiffeValidationDisabled(req.node, cfg.disableSpiffeCertValidation);
  const federated = [...view.federatedBundles.values()].sort((a, b) => (a.trustDomain < b.trustDomain ? -1 : a.trustDomain > b.trustDomain ? 1 : 0));
  const one = (name: string, b: TrustBundle): SecretResource => (spiffe ? spiffeValidatorSecret(name, [b]) : trustedCaSecret(name, b));
  const out: SecretResource[] = [];

  // Only one of these three is served per request, as in spire-agent (a switch on the own bundle).
  const ownId = tdId(view.bundle.trustDomain);
  if (all || names.has(ownId)) {
    out.push(one(ownId, view.bundle));
    names.delete(ownId);
  } else if (names.has(cfg.defaultBundleName)) {
    out.push(one(cfg.defaultBundleName, view.bundle));
    names.delete(cfg.defaultBundleName);
  } else if (names.has(cfg.defaultAllBundlesName)) {
    if (!spiffe) throw new StatusError(grpc.status.INTERNAL, 'unable to use "SPIFFE validator" on Envoy below 1.17');
    out.push(spiffeValidatorSecret(cfg.defaultAllBundlesName, [view.bundle, ...federated]));
    names.delete(cfg.defaultAllBundlesName);
  }

  for (const b of federated) {
    const id = tdId(b.trustDomain);
    if (all || names.has(id)) {
      out.push(one(id, b));
      names.delete(id);
    }
  }

  view.identities.forEach((identity, i) => {
    const id = identity.entry.spiffeId;
    if (all || names.has(id)) {
      out.push(tlsCertificateSecret(id, identity));
      names.delete(id);
    } else if (i === 0 && names.has(cfg.defaultSvidName)) {
      out.push(tlsCertificateSecret(cfg.defaultSvidName, identity));
      names.delete(cfg.defaultSvidName);
    }
  });

  if (names.size > 0) {
    throw new StatusError(grpc.status.INVALID_ARGUMENT, `workload is not authorized for the requested identities ${quoteList([...names].sort())}`);
  }
  return out;
}
