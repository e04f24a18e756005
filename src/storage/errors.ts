import { SpiffeAgentError, type ErrorCodes } from '../errors.js';

declare module '../errors.js' {
  interface ErrorCodes {
    storage: 'data_dir_unsafe';
  }
}

/** A directory the agent keeps keys and SVIDs in cannot be made private to it. */
export class StorageError extends SpiffeAgentError<ErrorCodes['storage']> {}
