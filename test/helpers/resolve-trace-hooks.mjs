/**
 * Module resolve hook for tests that check what a process loads: every resolved URL is appended,
 * one per line, to the file named by RESOLVE_TRACE_FILE. Registered by resolve-trace.mjs
 * (`node --import <resolve-trace.mjs>`); it runs on the loader thread, hence the synchronous write.
 */
import { appendFileSync } from 'node:fs';

export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  const file = process.env.RESOLVE_TRACE_FILE;
  if (file) appendFileSync(file, `${r.url}\n`);
  return r;
}
