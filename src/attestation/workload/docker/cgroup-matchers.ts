/**
 * spire-agent's `container_id_cgroup_matchers`: '/'-delimited patterns where `*` matches one
 * whole path segment and `<id>` captures one whole segment as the container id, e.g.
 * "/docker/<id>" or "/my.slice/*\/<id>/*". Not regular expressions.
 */
import { parseCgroupFile } from '../../../proc/container-info.js';
import { DockerAttestorError } from './errors.js';

const WILDCARD = '*';
const ID = '<id>';

export interface CgroupMatcher {
  /** The id found in a cgroup path, '' if a pattern matched an empty segment, undefined if none matched. */
  find(cgroupPath: string): string | undefined;
}

/** Problems with a pattern list, as messages (empty = valid). */
export function validateMatchers(patterns: readonly string[]): string[] {
  const problems: string[] = [];
  if (patterns.length === 0) problems.push('at least 1 pattern must be supplied');
  for (const p of patterns) {
    const ids = p.split('/').filter((s) => s === ID).length;
    if (ids !== 1) problems.push(`pattern ${JSON.stringify(p)} must contain the container id token "${ID}" exactly once`);
  }
  const ambiguous = new Set<string>();
  for (let i = 0; i < patterns.length; i++) {
    for (let j = i + 1; j < patterns.length; j++) {
      const a = patterns[i] ?? '';
      const b = patterns[j] ?? '';
      if (couldMatchSameInput(a, b)) ambiguous.add(a).add(b);
    }
  }
  if (ambiguous.size > 0) {
    problems.push(`patterns must not be ambiguous: ${[...ambiguous].map((p) => JSON.stringify(p)).join(', ')} can match the same cgroup path`);
  }
  return problems;
}

/**
 * Tokens never match '/', so patterns with different segment counts cannot match the same
 * path; with equal counts they can exactly when every position is equal or a token.
 */
function couldMatchSameInput(a: string, b: string): boolean {
  const as = a.split('/');
  const bs = b.split('/');
  if (as.length !== bs.length) return false;
  return as.every((s, i) => {
    const t = bs[i];
    return s === t || s === WILDCARD || s === ID || t === WILDCARD || t === ID;
  });
}

function compile(pattern: string): RegExp {
  const body = pattern
    .split('/')
    .map((s) => (s === WILDCARD ? '[^/]*' : s === ID ? '([^/]*)' : s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${body}$`);
}

/** Throws DockerAttestorError `config_invalid` for an invalid list; the config parser reports problems first. */
export function compileMatchers(patterns: readonly string[]): CgroupMatcher {
  const problems = validateMatchers(patterns);
  if (problems.length > 0) throw new DockerAttestorError('config_invalid', `docker: container_id_cgroup_matchers: ${problems.join('; ')}`);
  const res = patterns.map(compile);
  return {
    find(path) {
      for (const re of res) {
        const m = re.exec(path);
        if (m) return m[1] ?? '';
      }
      return undefined;
    },
  };
}

/**
 * The container id named by the cgroup file through the matchers: undefined when no path
 * matches (not a container). Different ids on different lines, or a pattern matching an
 * empty segment, are errors: a bad pattern must not silently attest the wrong thing.
 */
export function containerIdFromMatchers(matcher: CgroupMatcher, cgroupFileText: string): string | undefined {
  let found: string | undefined;
  for (const e of parseCgroupFile(cgroupFileText)) {
    const id = matcher.find(e.path);
    if (id === undefined) continue;
    if (id === '') {
      throw new DockerAttestorError('container_id_empty', `docker: a container_id_cgroup_matchers pattern matched ${JSON.stringify(e.path)} but the <id> segment is empty`);
    }
    if (found !== undefined && found !== id) {
      throw new DockerAttestorError('container_conflict', `docker: multiple container IDs found in cgroups (${found}, ${id})`);
    }
    found = id;
  }
  return found;
}
