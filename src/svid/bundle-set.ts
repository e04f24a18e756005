import type { TrustDomain } from './spiffe-id.js';

/** Consumer-side view: "give me the bundle of this trust domain". */
export interface BundleSource<B> {
  bundleFor(td: TrustDomain): B | undefined;
}

interface HasTrustDomain {
  readonly trustDomain: TrustDomain;
}

/** A plain map of bundles keyed by trust domain name. */
export class BundleSet<B extends HasTrustDomain> implements BundleSource<B> {
  readonly #bundles = new Map<string, B>();

  constructor(bundles: Iterable<B> = []) {
    for (const b of bundles) this.set(b);
  }

  set(bundle: B): void {
    this.#bundles.set(bundle.trustDomain.name, bundle);
  }

  delete(td: TrustDomain): boolean {
    return this.#bundles.delete(td.name);
  }

  bundleFor(td: TrustDomain): B | undefined {
    return this.#bundles.get(td.name);
  }

  has(td: TrustDomain): boolean {
    return this.#bundles.has(td.name);
  }

  get size(): number {
    return this.#bundles.size;
  }

  bundles(): B[] {
    return [...this.#bundles.values()];
  }
}
