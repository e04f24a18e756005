/**
 * One error base for the whole project. `code` is stable and machine-readable;
 * `message` starts with the module that raised it (e.g. "x509svid: ...") and says
 * what the user can do about it. Subclasses live next to their domain.
 */
export class SpiffeAgentError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}
