/**
 * What the cache hands out (a workload's X.509 identities and the bundles its entries need) and
 * the subscription every open stream holds on the cache manager (./manager.ts).
 */
import type { RegistrationEntry, Selector, TrustBundle } from '../authority/types.js';

export interface X509Identity {
  readonly entry: RegistrationEntry;
  readonly chain: readonly Uint8Array[];
  readonly keyPkcs8: Uint8Array;
  readonly serial: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly rotateAt: number;
}

export interface BundleView {
  readonly bundle: TrustBundle;
  /** Bundles of trust domains the caller's entries federate with, by bare name. */
  readonly federatedBundles: ReadonlyMap<string, TrustBundle>;
}

export interface WorkloadView extends BundleView {
  readonly identities: readonly X509Identity[];
}

export interface Subscription {
  readonly selectors: readonly Selector[];
  /** Re-attestation found different selectors: later views follow them. */
  setSelectors(selectors: readonly Selector[]): void;
  view(): Promise<WorkloadView>;
  /** Entries the selectors match now (no signing). */
  entries(): RegistrationEntry[];
  bundles(): BundleView;
  close(): void;
}

export interface SubState {
  selectors: readonly Selector[];
  inUse: ReadonlySet<string>;
  onChange: () => void;
}

/** What a subscription asks of its manager: one object per manager, shared by every subscription. */
export interface SubscriptionHost {
  view(state: SubState): Promise<WorkloadView>;
  entries(state: SubState): RegistrationEntry[];
  bundles(state: SubState): BundleView;
  close(state: SubState): void;
}

export const NO_ENTRIES: ReadonlySet<string> = new Set();

/**
 * A subscriber, which every open stream holds for its lifetime: a class with its methods on the
 * prototype, not an object literal of closures (a getter and six closures per stream were ≈1 KiB).
 */
export class CacheSubscription implements Subscription, SubState {
  inUse: ReadonlySet<string> = NO_ENTRIES;

  constructor(
    private readonly host: SubscriptionHost,
    public selectors: readonly Selector[],
    readonly onChange: () => void,
  ) {}

  setSelectors(next: readonly Selector[]): void {
    this.selectors = next;
  }

  view(): Promise<WorkloadView> {
    return this.host.view(this);
  }

  entries(): RegistrationEntry[] {
    return this.host.entries(this);
  }

  bundles(): BundleView {
    return this.host.bundles(this);
  }

  close(): void {
    this.host.close(this);
  }
}

