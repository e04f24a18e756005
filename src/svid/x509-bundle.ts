import { BundleError } from './errors.js';
import { concatDer, pemDecode, pemEncodeCertificates, splitDerCertificates } from './der.js';
import { parseCertificateDer } from './x509-cert.js';
import type { TrustDomain } from './spiffe-id.js';

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** The X.509 authorities (CA certificates, DER) of one trust domain. Immutable. */
export class X509Bundle {
  readonly trustDomain: TrustDomain;
  readonly #authorities: readonly Uint8Array[];

  constructor(td: TrustDomain, authorities: readonly Uint8Array[]) {
    authorities.forEach((der, i) => {
      try {
        parseCertificateDer(der);
      } catch (cause) {
        throw new BundleError(
          'bad_certificate',
          `bundle: X.509 authority ${i} of trust domain "${td.name}" is not a DER certificate`,
          { cause },
        );
      }
    });
    this.trustDomain = td;
    this.#authorities = Object.freeze(authorities.map((a) => a.slice()));
  }

  /** Workload API encoding: concatenated DER. An empty input yields an empty bundle. */
  static fromDer(td: TrustDomain, concat: Uint8Array): X509Bundle {
    let certs: Uint8Array[];
    try {
      certs = splitDerCertificates(concat);
    } catch (cause) {
      throw new BundleError('bad_der', `bundle: cannot split X.509 bundle of "${td.name}" into DER certificates`, { cause });
    }
    return new X509Bundle(td, certs);
  }

  /** `trust_bundle_format = "pem"`: one or more CERTIFICATE blocks; zero is an error. */
  static fromPem(td: TrustDomain, text: string | Uint8Array): X509Bundle {
    let certs: Uint8Array[];
    try {
      certs = pemDecode(text, 'CERTIFICATE');
    } catch (cause) {
      throw new BundleError('bad_pem', `bundle: cannot decode PEM bundle of "${td.name}"`, { cause });
    }
    if (certs.length === 0) {
      throw new BundleError('empty', `bundle: PEM bundle of "${td.name}" holds no CERTIFICATE block`);
    }
    return new X509Bundle(td, certs);
  }

  authorities(): Uint8Array[] {
    return this.#authorities.map((a) => a.slice());
  }

  hasAuthority(der: Uint8Array): boolean {
    return this.#authorities.some((a) => bytesEqual(a, der));
  }

  isEmpty(): boolean {
    return this.#authorities.length === 0;
  }

  toDer(): Uint8Array {
    return concatDer(this.#authorities);
  }

  toPem(): string {
    return pemEncodeCertificates(this.#authorities);
  }

  equals(o: unknown): boolean {
    if (!(o instanceof X509Bundle) || !o.trustDomain.equals(this.trustDomain)) return false;
    const other = o.#authorities;
    return other.length === this.#authorities.length && other.every((a, i) => bytesEqual(a, this.#authorities[i] as Uint8Array));
  }
}
