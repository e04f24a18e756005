/**
 * The one place errors become gRPC statuses. grpc-js turns anything without a
 * numeric `code` into UNKNOWN, so handlers always fail through here.
 *
 * STATUS maps every error code of the project (src/errors.ts collects them by domain) to the
 * status an RPC ends with when that error ends it. It is a Record over the whole union, so a new
 * code does not compile until it has a row here. README "Errors" lists the same table with what
 * each code means and what to do; test/unit/endpoints/status.test.ts checks that they agree.
 * Codes that never end an RPC (attestor failures, which the fan-out logs and drops; config, CLI
 * and SDK errors) still have a row: Internal, what an RPC would get if one ever did.
 */
import * as grpc from '@grpc/grpc-js';
import { SpiffeAgentError, type ErrorCode } from '../errors.js';

/** `grpc_invalid_argument`, ...: the code of a StatusError, which carries its status itself. */
export type StatusErrorCode = `grpc_${Lowercase<keyof typeof grpc.status>}`;

declare module '../errors.js' {
  interface ErrorCodes {
    endpoints: StatusErrorCode | 'socket_path_taken' | 'admin_socket_path_invalid' | 'h2_protocol' | 'socket_dir_unsafe' | 'socket_bind_failed' | 'uid_connection_share' | 'socket_activation_invalid';
  }
}

export class StatusError extends SpiffeAgentError<StatusErrorCode> {
  constructor(
    readonly status: grpc.status,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`grpc_${(grpc.status[status] ?? 'unknown').toLowerCase()}` as StatusErrorCode, message, options);
  }
}

const { INTERNAL, UNAUTHENTICATED, UNAVAILABLE, FAILED_PRECONDITION, NOT_FOUND, INVALID_ARGUMENT } = grpc.status;

const TABLE: Record<Exclude<ErrorCode, StatusErrorCode>, grpc.status> = {
  // proc: who the caller is
  caller_gone: UNAUTHENTICATED,
  no_peer_pid: UNAUTHENTICATED,
  no_peer_fd: UNAUTHENTICATED,
  process_gone: INTERNAL,
  data_dir_unsafe: FAILED_PRECONDITION,
  proc_read: INTERNAL,
  // The agent lacks a privilege (CAP_SYS_PTRACE, say): a retry cannot help until the operator grants it.
  proc_denied: FAILED_PRECONDITION,
  proc_malformed: INTERNAL,
  syscall_failed: INTERNAL,
  fd_exhausted: UNAVAILABLE,
  container_conflict: INTERNAL,
  cgroup_malformed: INTERNAL,
  mountinfo_malformed: INTERNAL,
  // attestation fan-out: what the caller is told
  attestation_failed: UNAVAILABLE,
  // gRPC's code for "do not retry until the system is fixed": the binary will not shrink.
  workload_refused: FAILED_PRECONDITION,
  workload_gone: NOT_FOUND,
  // single attestors: logged and dropped by the fan-out, never a status by themselves
  workload_too_large: INTERNAL,
  unknown_plugin: INTERNAL,
  pod_not_found: INTERNAL,
  kubelet_unavailable: INTERNAL,
  duplicate_container: INTERNAL,
  kubelet_disabled: INTERNAL,
  kubelet_response: INTERNAL,
  pod_cache_closed: INTERNAL,
  kubelet_config: INTERNAL,
  kubelet_request: INTERNAL,
  docker_unavailable: INTERNAL,
  container_not_found: INTERNAL,
  image_not_found: INTERNAL,
  docker_api: INTERNAL,
  docker_bad_response: INTERNAL,
  container_id_empty: INTERNAL,
  aborted: INTERNAL,
  systemd_bus_unavailable: INTERNAL,
  systemd_lookup_failed: INTERNAL,
  systemd_bad_reply: INTERNAL,
  systemd_timeout: INTERNAL,
  systemd_aborted: INTERNAL,
  systemd_invalid_pid: INTERNAL,
  systemd_closed: INTERNAL,
  dbus_address_invalid: INTERNAL,
  dbus_connect_failed: INTERNAL,
  dbus_auth_failed: INTERNAL,
  dbus_protocol: INTERNAL,
  dbus_connection_closed: INTERNAL,
  dbus_timeout: INTERNAL,
  dbus_aborted: INTERNAL,
  dbus_remote_error: INTERNAL,
  // the TPM client (tpm_devid, a TPM key manager): reported where they happen, never an RPC status
  tpm_device_not_found: INTERNAL,
  tpm_device_ambiguous: INTERNAL,
  tpm_device_unsupported: INTERNAL,
  tpm_io: INTERNAL,
  tpm_timeout: INTERNAL,
  tpm_malformed_response: INTERNAL,
  tpm_invalid_argument: INTERNAL,
  tpm_closed: INTERNAL,
  tpm_command_failed: INTERNAL,
  tpm_auth_failed: INTERNAL,
  tpm_lockout: INTERNAL,
  // tpm_devid node attestation: reported at start or when attesting, never an RPC status
  tpm_devid_files: INTERNAL,
  tpm_devid_no_tpm: INTERNAL,
  tpm_devid_ek_cert_missing: INTERNAL,
  tpm_devid_auth: INTERNAL,
  tpm_devid_tpm: INTERNAL,
  tpm_devid_challenge: INTERNAL,
  // authority and cache
  sign_failed: UNAVAILABLE,
  ca_store: INTERNAL,
  ca_trust_domain: INTERNAL,
  ca_ttl: INTERNAL,
  ca_not_valid: INTERNAL,
  csr_invalid: INTERNAL,
  entries_file: INTERNAL,
  federated_bundle: INTERNAL,
  jwt_audience: INTERNAL,
  not_started: INTERNAL,
  closed: INTERNAL,
  // server mode: node attestation, session, key managers, server authority
  node_attestor_config: INTERNAL,
  node_attestor_unexpected_challenge: INTERNAL,
  node_attestor_challenge: INTERNAL,
  node_attestor_io: INTERNAL,
  node_attestor_listen: INTERNAL,
  node_attestor_count: INTERNAL,
  keymanager_count: INTERNAL,
  keymanager_corrupt: INTERNAL,
  keymanager_tpm_foreign: INTERNAL,
  keymanager_tpm_failed: INTERNAL,
  bootstrap_bundle: INTERNAL,
  bootstrap_state: INTERNAL,
  server_identity: INTERNAL,
  server_unknown_authority: INTERNAL,
  attestation_protocol: INTERNAL,
  not_reattestable: INTERNAL,
  agent_banned: INTERNAL,
  agent_must_reattest: INTERNAL,
  rebootstrap_required: INTERNAL,
  storage_corrupt: INTERNAL,
  session_closed: INTERNAL,
  bundle_malformed: INTERNAL,
  bundle_wrong_trust_domain: INTERNAL,
  sync_protocol: INTERNAL,
  jwtsvid_malformed: INTERNAL,
  svid_malformed: INTERNAL,
  rpc_missing: INTERNAL,
  stream_ended: INTERNAL,
  initial_sync_failed: INTERNAL,
  server_unavailable: INTERNAL,
  server_timeout: INTERNAL,
  entry_not_found: INTERNAL,
  svid_refused: INTERNAL,
  // input files and JSON
  input_not_found: INTERNAL,
  input_unreadable: INTERNAL,
  input_not_regular: INTERNAL,
  input_too_large: INTERNAL,
  json_invalid: INTERNAL,
  // svid: what a caller sent
  jwtsvid_invalid: INVALID_ARGUMENT,
  spiffeid_invalid: INVALID_ARGUMENT,
  x509svid_invalid: INTERNAL,
  bundle_invalid: INTERNAL,
  encoding_invalid: INTERNAL,
  // start-up, config, CLI and sockets: reported before or outside any RPC
  config_invalid: INTERNAL,
  config_syntax: INTERNAL,
  config_not_found: INTERNAL,
  config_unreadable: INTERNAL,
  usage: INTERNAL,
  no_workload_attestor: INTERNAL,
  package_json_missing: INTERNAL,
  metrics_listen_failed: INTERNAL,
  socket_path_taken: INTERNAL,
  admin_socket_path_invalid: INTERNAL,
  h2_protocol: INTERNAL,
  socket_dir_unsafe: INTERNAL,
  socket_bind_failed: INTERNAL,
  socket_activation_invalid: INTERNAL,
  // refused at accept, before any RPC; what a status would be
  uid_connection_share: UNAVAILABLE,
  body_too_large: INTERNAL,
  // SDK (runs in workloads)
  workloadapi_address: INTERNAL,
  workloadapi_rpc: INTERNAL,
  workloadapi_response: INTERNAL,
  workloadapi_source_closed: INTERNAL,
  workloadapi_timeout: INTERNAL,
  workloadapi_no_svid: INTERNAL,
  workloadapi_no_bundle: INTERNAL,
  workloadapi_proto: INTERNAL,
  tlsconfig_unauthorized: INTERNAL,
};

export const STATUS: Readonly<Record<Exclude<ErrorCode, StatusErrorCode>, grpc.status>> = Object.freeze(TABLE);

export function statusOf(err: unknown): grpc.status {
  if (err instanceof StatusError) return err.status;
  if (err instanceof SpiffeAgentError) return (STATUS as Record<string, grpc.status>)[err.code] ?? INTERNAL;
  return INTERNAL;
}

export function toServiceError(err: unknown): Partial<grpc.ServiceError> & { code: grpc.status; details: string } {
  const msg = err instanceof Error ? err.message : String(err);
  return { code: statusOf(err), details: msg, message: msg };
}
