import { SpiffeAgentError, type ErrorCodes } from '../../../errors.js';

declare module '../../../errors.js' {
  interface ErrorCodes {
    docker: 'docker_unavailable' | 'container_not_found' | 'image_not_found' | 'docker_api' | 'docker_bad_response' | 'container_conflict' | 'container_id_empty' | 'config_invalid' | 'aborted';
  }
}

/**
 * Errors of the docker attestor. None is a caller's status by itself: the attestation fan-out
 * logs a failing attestor and drops its selectors, and the call fails only when every attestor
 * fails (`attestation_failed`, Unavailable). Codes:
 * - `docker_unavailable`: the Engine API socket could not be reached or the request failed in transit;
 * - `container_not_found`: the engine does not know the container from the cgroups;
 * - `docker_api`: any other non-2xx answer;
 * - `docker_bad_response`: the body was not the documented JSON shape;
 * - `container_conflict`, `container_id_empty`: cgroup matchers disagree or matched an empty id;
 * - `config_invalid`: a matcher list that slipped past config validation;
 * - `aborted`: the caller gave up.
 */
export class DockerAttestorError extends SpiffeAgentError<ErrorCodes['docker']> {}
