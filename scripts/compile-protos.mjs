/**
 * Build step (after tsc): each set of src/proto/load.ts PROTO_SETS parsed once and written as
 * protobufjs JSON to dist/src/proto/compiled/<set>.json, which the agent reads at start instead of
 * parsing .proto text. Regenerated on every build, so it cannot drift from proto/.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const { PROTO_SETS, compiledProtoPath, parseProtoSet } = await import(pathToFileURL(join(repo, 'dist/src/proto/load.js')).href);
for (const set of Object.keys(PROTO_SETS)) {
  const out = compiledProtoPath(set);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(parseProtoSet(set).toJSON()));
}
