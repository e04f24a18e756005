/**
 * The layering check runs here so that CI (which counts vitest results) fails on an import
 * from a lower layer to a higher one. The order is in scripts/check-layers.mjs.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without type declarations
import { checkLayers } from '../../scripts/check-layers.mjs';

const check = checkLayers as (srcDir: string) => string[];
const SRC = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'layers-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, 'src', path)), { recursive: true });
    writeFileSync(join(root, 'src', path), text);
  }
  return join(root, 'src');
}

describe('layering', () => {
  it('src/ has no import from a lower layer to a higher one', () => {
    expect(check(SRC)).toEqual([]);
  });

  it('reports a back-up arrow with file and line, type-only imports included', () => {
    const src = tree({
      'config/a.ts': "export const a = 1;\n",
      'telemetry/t.ts': "// a comment\nimport type { A } from '../config/a.js';\n",
      'cli/c.ts': "import { a } from '../config/a.js';\n",
    });
    expect(check(src)).toEqual(['src/telemetry/t.ts:2: src/telemetry (layer 1) imports src/config (layer 2), a higher layer']);
  });

  it('keeps the SDK to svid and errors, and lets only the agent (trust_bundle_spiffe_workload_api) and the CLI import it', () => {
    const src = tree({
      'svid/id.ts': 'export {};\n',
      'cache/m.ts': 'export {};\n',
      'sdk/x.ts': "import '../svid/id.js';\nimport { m } from '../cache/m.js';\n",
      'endpoints/e.ts': "import { x } from '../sdk/x.js';\n",
      'cli/c.ts': "import { x } from '../sdk/x.js';\n",
    });
    expect(check(src)).toEqual([
      'src/endpoints/e.ts:1: src/endpoints imports the SDK; only agent, cli may',
      'src/sdk/x.ts:2: the SDK imports src/cache; it may import only svid and errors',
    ]);
  });

  it('refuses a new top-level unit until it is given a layer', () => {
    const src = tree({ 'gadgets/g.ts': 'export {};\n' });
    expect(check(src)).toEqual(['src/gadgets/g.ts:1: src/gadgets has no layer; add it to LAYERS in scripts/check-layers.mjs']);
  });
});
