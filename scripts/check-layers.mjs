#!/usr/bin/env node
/**
 * Layering check (`npm run lint:layers`; also run by test/unit/layers.test.ts, so CI fails on it).
 * Every top-level unit of src/ has a layer; a module may import from its own layer or a lower
 * one, never from a higher one. Reads the TypeScript sources, so `import type` counts too: a type
 * is as much an arrow as a value. Cycles are madge's job (`npm run lint:cycles`).
 *
 * A small script rather than dependency-cruiser: the rule is one table and forty lines, needs
 * nothing installed, and reads sources without a build; dependency-cruiser would bring a
 * resolver and a config language for the same table.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Lowest first. A unit is a folder under src/ or a file directly in it (without .ts). */
export const LAYERS = [
  ['errors', 'clock', 'domain', 'duration'],
  ['svid', 'crypto', 'storage', 'proc', 'telemetry', 'net', 'dbus', 'proto', 'parse', 'tpm'],
  ['config'],
  ['attestation', 'keymanager'],
  ['authority'],
  ['cache'],
  ['endpoints'],
  ['agent'],
  ['cli'],
];

/**
 * The SDK ships to workloads: it stands outside the ladder and imports only what it shares with the daemon.
 * packages/sdk compiles src/sdk and whatever it imports into @spiffe-agent/sdk, so this rule is also what
 * keeps the daemon out of that package (its build script checks the output against the same list).
 */
export const SDK = { unit: 'sdk', mayImport: ['sdk', 'svid', 'errors'], importedBy: ['sdk', 'agent', 'cli'] };

const IMPORT = /(?:\bfrom|\bimport)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g;

function unitOf(srcDir, file) {
  const first = relative(srcDir, file).split(sep)[0] ?? '';
  return first.replace(/\.(ts|js)$/, '');
}

function layerOf(unit) {
  const i = LAYERS.findIndex((l) => l.includes(unit));
  return i < 0 ? undefined : i;
}

function* tsFiles(dir) {
  for (const d of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, d.name);
    if (d.isDirectory()) yield* tsFiles(p);
    else if (d.name.endsWith('.ts')) yield p;
  }
}

/** Every import that breaks the layering, as "file:line: message"; empty when the tree is clean. */
export function checkLayers(srcDir) {
  srcDir = resolve(srcDir);
  const problems = [];
  for (const file of tsFiles(srcDir)) {
    const from = unitOf(srcDir, file);
    const text = readFileSync(file, 'utf8');
    const where = (index) => `${relative(dirname(srcDir), file)}:${text.slice(0, index).split('\n').length}`;
    if (from !== SDK.unit && layerOf(from) === undefined) {
      problems.push(`${where(0)}: src/${from} has no layer; add it to LAYERS in scripts/check-layers.mjs`);
      continue;
    }
    for (const m of text.matchAll(IMPORT)) {
      const target = resolve(dirname(file), m[1]);
      if (!target.startsWith(srcDir + sep)) continue;
      const to = unitOf(srcDir, target);
      if (to === from) continue;
      const at = where(m.index);
      if (from === SDK.unit) {
        if (!SDK.mayImport.includes(to)) problems.push(`${at}: the SDK imports src/${to}; it may import only ${SDK.mayImport.filter((u) => u !== 'sdk').join(' and ')}`);
        continue;
      }
      if (to === SDK.unit) {
        if (!SDK.importedBy.includes(from)) problems.push(`${at}: src/${from} imports the SDK; only ${SDK.importedBy.filter((u) => u !== 'sdk').join(', ')} may`);
        continue;
      }
      const lf = layerOf(from);
      const lt = layerOf(to);
      if (lt === undefined) problems.push(`${at}: imports src/${to}, which has no layer`);
      else if (lt > lf) problems.push(`${at}: src/${from} (layer ${lf}) imports src/${to} (layer ${lt}), a higher layer`);
    }
  }
  return problems;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const src = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'src');
  const problems = checkLayers(src);
  for (const p of problems) console.error(p);
  console.log(problems.length === 0 ? 'layers: no import from a lower layer to a higher one' : `layers: ${problems.length} import(s) against the layering`);
  process.exitCode = problems.length === 0 ? 0 : 1;
}
