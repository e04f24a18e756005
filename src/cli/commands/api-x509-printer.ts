/** spire-agent's pretty X.509 output (`api fetch x509`, `api watch`), plus a serial line. */
import { formatGoDuration } from '../../duration.js';
import { certDates, goTime } from './api-common.js';

export interface PrintableSVID {
  readonly spiffeId: string;
  readonly hint: string;
  /** DER, leaf first. */
  readonly certificates: readonly Uint8Array[];
  /** DER CA certificates of the SVID's own trust domain. */
  readonly bundle: readonly Uint8Array[];
  /** [trust domain as spire-agent names it, DER CA certificates], sorted. */
  readonly federated: ReadonlyArray<readonly [string, readonly Uint8Array[]]>;
}

export function formatX509SVIDs(svids: readonly PrintableSVID[], elapsedNs: bigint): string {
  const lines: string[] = [];
  lines.push(`Received ${svids.length} svid${svids.length === 1 ? '' : 's'} after ${formatGoDuration(elapsedNs)}`);
  for (const svid of svids) {
    lines.push('');
    lines.push(`SPIFFE ID:\t\t${svid.spiffeId}`);
    if (svid.hint !== '') lines.push(`Hint:\t\t\t${svid.hint}`);
    const [leaf, ...intermediates] = svid.certificates;
    if (leaf) {
      const d = certDates(leaf);
      lines.push(`SVID Serial:\t\t${d.serial}`);
      lines.push(`SVID Valid After:\t${goTime(d.notBefore)}`);
      lines.push(`SVID Valid Until:\t${goTime(d.notAfter)}`);
    }
    intermediates.forEach((der, i) => {
      const d = certDates(der);
      lines.push(`Intermediate #${i + 1} Valid After:\t${goTime(d.notBefore)}`);
      lines.push(`Intermediate #${i + 1} Valid Until:\t${goTime(d.notAfter)}`);
    });
    svid.bundle.forEach((der, i) => {
      const d = certDates(der);
      lines.push(`CA #${i + 1} Valid After:\t${goTime(d.notBefore)}`);
      lines.push(`CA #${i + 1} Valid Until:\t${goTime(d.notAfter)}`);
    });
    for (const [td, cas] of svid.federated) {
      cas.forEach((der, i) => {
        const d = certDates(der);
        lines.push(`[${td}] CA #${i + 1} Valid After:\t${goTime(d.notBefore)}`);
        lines.push(`[${td}] CA #${i + 1} Valid Until:\t${goTime(d.notAfter)}`);
      });
    }
  }
  lines.push('');
  return lines.join('\n') + '\n';
}
