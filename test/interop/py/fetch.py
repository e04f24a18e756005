"""Fetch and check both SVID kinds with py-spiffe (the real PyPI `spiffe` package).

The endpoint comes from SPIFFE_ENDPOINT_SOCKET, as for any production workload. Prints one JSON
document on stdout; exits 1 (with {"ok": false, "step", "code", "error"}) on any failure.
"""

import argparse
import datetime
import json
import sys
from typing import Any, Dict, List, Optional

import grpc
from spiffe import JwtSvid, WorkloadApiClient
from spiffe.svid.x509_svid import X509Svid


class StepError(Exception):
    def __init__(self, step: str, cause: BaseException) -> None:
        super().__init__(f'{step}: {cause}')
        self.step = step
        self.cause = cause


def grpc_code(err: Optional[BaseException]) -> str:
    """Name of the gRPC status behind a py-spiffe error (py-spiffe chains the RpcError as __cause__)."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, grpc.Call):
            return err.code().name
        err = err.__cause__ or err.__context__
    return ''


def step(name: str, fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - every failure is reported with its step
        raise StepError(name, e) from e


def verify_chain(svid: X509Svid, authorities, now: datetime.datetime) -> int:
    """Verify leaf -> intermediates -> one bundle authority by signature and validity window.

    py-spiffe has no path builder, so this walks the chain with `cryptography` the way a relying
    party would; returns the verified path length including the root.
    """
    chain = svid.cert_chain
    for cert in chain:
        if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
            raise ValueError(f'certificate {cert.serial_number:x} not valid at {now.isoformat()}')
    for child, parent in zip(chain, chain[1:]):
        child.verify_directly_issued_by(parent)
    last = chain[-1]
    for root in authorities:
        try:
            last.verify_directly_issued_by(root)
            return len(chain) + 1
        except Exception:  # noqa: BLE001 - try the next authority
            continue
    raise ValueError(f'chain for {svid.spiffe_id} does not lead to any bundle authority')


def run(audience: str, timeout: float) -> Dict[str, Any]:
    client = step('WorkloadApiClient', WorkloadApiClient, default_timeout=timeout)
    try:
        ctx = step('fetch_x509_context', client.fetch_x509_context)
        now = datetime.datetime.now(datetime.timezone.utc)
        svids: List[Dict[str, Any]] = []
        for svid in ctx.x509_svids:
            td = svid.spiffe_id.trust_domain
            bundle = ctx.x509_bundle_set.get_bundle_for_trust_domain(td)
            if bundle is None:
                raise StepError('verify_chain', ValueError(f'no X.509 bundle for {td}'))
            path_len = step('verify_chain', verify_chain, svid, bundle.x509_authorities, now)
            leaf = svid.leaf
            svids.append({
                'spiffeId': str(svid.spiffe_id),
                'serial': format(leaf.serial_number, 'x'),
                'notAfter': leaf.not_valid_after_utc.isoformat(),
                'chainLength': len(svid.cert_chain),
                'verifiedChainLength': path_len,
            })
        x509_bundles = step('fetch_x509_bundles', client.fetch_x509_bundles)

        jwt = step('fetch_jwt_svid', client.fetch_jwt_svid, audience={audience})
        jwt_bundles = step('fetch_jwt_bundles', client.fetch_jwt_bundles)
        jwt_bundle = jwt_bundles.get_bundle_for_trust_domain(jwt.spiffe_id.trust_domain)
        if jwt_bundle is None:
            raise StepError('JwtSvid.parse_and_validate',
                            ValueError(f'no JWT bundle for {jwt.spiffe_id.trust_domain}'))
        local = step('JwtSvid.parse_and_validate', JwtSvid.parse_and_validate,
                     jwt.token, jwt_bundle, {audience})
        remote = step('validate_jwt_svid', client.validate_jwt_svid, jwt.token, audience)

        return {
            'ok': True,
            'x509Svids': svids,
            'x509ContextTrustDomains': sorted(str(b.trust_domain) for b in ctx.x509_bundle_set.bundles),
            'x509BundleTrustDomains': sorted(str(b.trust_domain) for b in x509_bundles.bundles),
            'jwtSvid': {
                'sub': str(local.spiffe_id),
                'aud': sorted(local.audience),
                'exp': local.expiry,
                'validatedBy': str(remote.spiffe_id),
            },
            'jwtBundleTrustDomains': sorted(str(b.trust_domain) for b in jwt_bundles.bundles),
            'jwtAuthorityKeyIds': sorted(jwt_bundle.jwt_authorities.keys()),
        }
    finally:
        client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--audience', default='spiffe://example.org/interop-audience')
    parser.add_argument('--timeout', type=float, default=20.0)
    args = parser.parse_args()
    try:
        out = run(args.audience, args.timeout)
    except StepError as e:
        out = {'ok': False, 'step': e.step, 'code': grpc_code(e.cause), 'error': str(e.cause)}
    except Exception as e:  # noqa: BLE001
        out = {'ok': False, 'step': 'unknown', 'code': grpc_code(e), 'error': f'{type(e).__name__}: {e}'}
    json.dump(out, sys.stdout, indent=2, default=str)
    sys.stdout.write('\n')
    if not out['ok']:
        sys.stderr.write(f"py-spiffe fetch: {out['step']}: {out['error']}\n")
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
