import type { Clock } from '../../clock.js';
import type { Logger } from '../../telemetry/logger.js';
import { F } from '../../telemetry/names.js';
import type { TrustBundle } from '../types.js';
import { INPUT_LIMITS, readBoundedFile } from '../../storage/bounded-file.js';
import { EmbeddedAuthorityError } from './errors.js';
import { FileWatcher } from './file-watcher.js';
import { trustDomainProblem } from './spiffe-id.js';

export interface FederatedBundlesOptions {
  /** trust domain name -> file */
  files: Readonly<Record<string, string>>;
  ownTrustDomain: string;
  clock: Clock;
  log: Logger;
  onChange: () => void;
}

/** Federated bundles from local files, re-read when a file changes; a broken file keeps the previous bundle. */
export class FederatedBundles {
  private bundles = new Map<string, TrustBundle>();
  private readonly raw = new Map<string, string>();
  private watcher: FileWatcher | undefined;
  private closed = false;

  constructor(private readonly o: FederatedBundlesOptions) {}

  async start(): Promise<void> {
    for (const td of Object.keys(this.o.files)) {
      const problem = trustDomainProblem(td);
      if (problem) throw new EmbeddedAuthorityError('federated_bundle', `federated-bundles: "${td}": ${problem}`);
      if (td === this.o.ownTrustDomain) throw new EmbeddedAuthorityError('federated_bundle', `federated-bundles: "${td}" is this agent's own trust domain`);
    }
    const errors = await this.refresh();
    if (errors.length > 0) throw errors[0];
    const files = Object.values(this.o.files);
    if (files.length > 0) {
      this.watcher = new FileWatcher(files, () => void this.refresh(), { clock: this.o.clock });
      await this.watcher.start();
    }
  }

  get(): ReadonlyMap<string, TrustBundle> {
    return this.bundles;
  }

  close(): void {
    this.closed = true;
    this.watcher?.close();
  }

  /** Re-read every file; returns the problems (already logged). */
  async refresh(): Promise<Error[]> {
    const errors: Error[] = [];
    const next = new Map(this.bundles);
    let changed = false;
    const files = Object.entries(this.o.files);
    if (files.length === 0) return errors;
    // The bundle parsers (and the certificate library under them) load only when a file is configured.
    const { parseBundleFile } = await import('./federated-bundle-file.js');
    for (const [td, file] of files) {
      try {
        const text = await readBoundedFile(file, { maxBytes: INPUT_LIMITS.bundle, what: `federated bundle of "${td}"` });
        if (this.raw.get(td) === text) continue;
        const parsed = parseBundleFile(td, file, text);
        const prev = this.bundles.get(td);
        // Bundles without spiffe_sequence (PEM) still need a number that moves on change.
        const seq = Math.max(parsed.sequenceNumber, (prev?.sequenceNumber ?? 0) + 1);
        next.set(td, { ...parsed, sequenceNumber: seq });
        this.raw.set(td, text);
        changed = true;
      } catch (err) {
        const e = err instanceof EmbeddedAuthorityError ? err : new EmbeddedAuthorityError('federated_bundle', `federated-bundles: ${(err as Error).message.replace(/^input: /, '')}`, { cause: err });
        this.o.log.error({ [F.trustDomain]: td, [F.path]: file, [F.error]: e.message }, 'Federated bundle cannot be loaded; keeping the previous one');
        errors.push(e);
      }
    }
    if (changed) {
      this.bundles = next;
      if (!this.closed) this.o.onChange();
    }
    return errors;
  }
}
