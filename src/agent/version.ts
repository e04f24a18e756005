/**
 * The agent's version, read from its own package.json at run time, so `spiffe-agent --version` and
 * the `version` label of spire_agent_started always name the release that is installed (a constant
 * in the code drifted from package.json). The file is found by walking up from this module: it is
 * two levels up from src/agent (tests run the sources), three from dist/src/agent (the repo's build,
 * the container image's /opt/spiffe-agent, `npm install -g`'s lib/node_modules/spiffe-agent); every
 * layout ships package.json at the package root (npm always packs it; scripts/image.sh copies it).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SpiffeAgentError } from '../errors.js';

/** The package's name in package.json: a package.json of anything else on the way up is not ours. */
const PACKAGE_NAME = 'spiffe-agent';

/** Walks up from `from` (a module URL) to spiffe-agent's package.json and returns its version. */
export function agentVersion(from: string = import.meta.url): string {
  let dir = dirname(fileURLToPath(from));
  for (;;) {
    const file = join(dir, 'package.json');
    let text: string | undefined;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      text = undefined;
    }
    if (text !== undefined) {
      const pkg = parsePackage(text);
      if (pkg?.name === PACKAGE_NAME && typeof pkg.version === 'string' && pkg.version !== '') return pkg.version;
    }
    const parent = dirname(dir);
    if (parent === dir) {
      throw new SpiffeAgentError('package_json_missing', `agent: no package.json of ${PACKAGE_NAME} with a version above ${fileURLToPath(from)}; reinstall the package`);
    }
    dir = parent;
  }
}

function parsePackage(text: string): { name?: unknown; version?: unknown } | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null ? (v as { name?: unknown; version?: unknown }) : undefined;
  } catch {
    return undefined;
  }
}
