import { SpiffeAgentError, type ErrorCodes } from '../../../errors.js';

declare module '../../../errors.js' {
  interface ErrorCodes {
    k8s: 'pod_not_found' | 'kubelet_unavailable' | 'duplicate_container' | 'kubelet_disabled';
  }
}

/**
 * Attestation failures of the k8s attestor. spire-agent's k8s plugin returns these as
 * DeadlineExceeded, Unavailable, Internal and FailedPrecondition; here, as there, they are
 * logged by the fan-out and the attestor's selectors are dropped, so none is a caller's status
 * by itself (the call fails only when every attestor fails: `attestation_failed`). Codes:
 * `pod_not_found` (the container never appeared in the pod list),
 * `kubelet_unavailable` (the kubelet kept failing until the last attempt),
 * `duplicate_container` (one container ID in two pods),
 * `kubelet_disabled` (disable_kubelet_client is set).
 */
export class K8sAttestorError extends SpiffeAgentError<ErrorCodes['k8s']> {}
