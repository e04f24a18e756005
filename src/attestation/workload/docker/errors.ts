import { SpiffeAgentError } from '../../../errors.js';

/**
 * Errors of the docker attestor. Codes:
 * - `docker_unavailable`: the Engine API socket could not be reached or the request failed in transit (Unavailable);
 * - `container_not_found`: the engine does not know the container from the cgroups (NotFound);
 * - `docker_api`: any other non-2xx answer (Internal);
 * - `docker_bad_response`: the body was not the documented JSON shape (Internal);
 * - `container_conflict`, `container_id_empty`: cgroup matchers disagree or matched an empty id (FailedPrecondition);
 * - `config_invalid`: a matcher list that slipped past config validation (InvalidArgument);
 * - `aborted`: the caller gave up (Cancelled).
 */
export class DockerAttestorError extends SpiffeAgentError {}
