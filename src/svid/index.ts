export * from './errors.js';
export * from './spiffe-id.js';
export * from './der.js';
export * from './x509-bundle.js';
export * from './jwt-bundle.js';
export * from './bundle-set.js';
export { SpiffeBundle, checkBundleRefresh, parseSpiffeBundleMap, type SpiffeBundleInit } from './spiffe-bundle.js';
export * from './x509-svid.js';
export * from './jwt-svid.js';
