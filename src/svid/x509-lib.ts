// @peculiar/x509 resolves its DI container through tsyringe, which refuses to load without the
// Reflect metadata polyfill. This is the one module that loads the library, so the polyfill is
// imported exactly once, before it; everything else imports `x509` from here.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

export { x509 };
