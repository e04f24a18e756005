export { authorizeAny, authorizeID, authorizeMemberOf, authorizeOneOf, type Authorizer } from './authorizer.js';
export { MTLSAgent, hookMTLSServer, mtlsClientOptions, mtlsServerOptions, peerChain, type HookOptions, type X509SourceLike } from './options.js';
export { verifyPeerChain } from './verify.js';
