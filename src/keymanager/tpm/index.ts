/** KeyManager "tpm": loaded by the catalog only when agent.conf configures it. */
export { TpmKeyManager, verifyKeyDirectory, type TpmKeyManagerDeps, type CreationStep } from './tpm-key-manager.js';
export { KEY_FILE, decodeKeyFile, encodeKeyFile, type SealedKeyFile, type SealedKeyRecord } from './key-file.js';
export { KeyManagerTpmError, type KeyManagerTpmErrorCode } from './errors.js';
