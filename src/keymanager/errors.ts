/** Codes the KeyManager catalog and the disk KeyManager throw with the base class. */
export {};

declare module '../errors.js' {
  interface ErrorCodes {
    keymanager: 'keymanager_count' | 'keymanager_corrupt';
  }
}
