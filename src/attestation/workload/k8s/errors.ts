import { SpiffeAgentError } from '../../../errors.js';

/**
 * Attestation failures of the k8s attestor. Codes, with the gRPC status spire-agent uses:
 * `pod_not_found` (DeadlineExceeded: the container never appeared in the pod list),
 * `kubelet_unavailable` (Unavailable: the kubelet kept failing until the last attempt),
 * `duplicate_container` (Internal: one container ID in two pods),
 * `kubelet_disabled` (FailedPrecondition: disable_kubelet_client is set).
 */
export class K8sAttestorError extends SpiffeAgentError {}
