/**
 * The SDK's logger seam. Structurally compatible with the daemon's Logger, but
 * declared here because the SDK must not import daemon code. Silent by default.
 */
export interface SdkLogger {
  debug(obj: Record<string, unknown> | string, msg?: string): void;
  info(obj: Record<string, unknown> | string, msg?: string): void;
  warn(obj: Record<string, unknown> | string, msg?: string): void;
  error(obj: Record<string, unknown> | string, msg?: string): void;
}

export const nullLogger: SdkLogger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
};
