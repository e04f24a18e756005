// `node --import <this file>`: records every module the process resolves (see resolve-trace-hooks.mjs).
import { register } from 'node:module';

register('./resolve-trace-hooks.mjs', import.meta.url);
