export { SystemdAttestor, createSystemdAttestor, DEFAULT_CALL_TIMEOUT_MS, type SystemdAttestorOptions } from './attestor.js';
export { parseSystemdConfig, type SystemdAttestorConfig } from './config.js';
export { SystemdAttestorError, type SystemdAttestorErrorCode } from './errors.js';
