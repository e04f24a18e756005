/**
 * Maps dotted keys ("agent.sync_interval", "plugins.WorkloadAttestor.unix.plugin_data.x") to the
 * first line where they appear, for HCL and JSON alike, from the text alone (JSON.parse and
 * plugin_data files keep no positions; hcl1.ts records its own).
 */
import { scan } from './scan.js';

export interface KeyLocator {
  /** The line of `key`, else of its nearest enclosing block that we found. */
  line(key: string): number | undefined;
}

export function locateKeys(src: string): KeyLocator {
  const lines = new Map<string, number>();
  const stack: string[][] = [];
  let pending: { text: string; line: number }[] = [];
  let assigned: string | undefined;
  const record = (labels: string[], line: number) => {
    const path = [...stack.flat(), ...labels].join('.');
    if (path && !lines.has(path)) lines.set(path, line);
  };
  for (const t of scan(src)) {
    if (t.kind === 'word' || t.kind === 'string') {
      pending.push({ text: t.text, line: t.line });
      continue;
    }
    if (t.kind === 'newline') {
      pending = [];
      continue;
    }
    switch (t.text) {
      case '=':
      case ':': {
        const key = pending[pending.length - 1];
        if (key) {
          record([key.text], key.line);
          assigned = key.text;
        }
        pending = [];
        break;
      }
      case '{':
      case '[': {
        const labels = pending.length > 0 ? pending.map((p) => p.text) : assigned !== undefined ? [assigned] : [];
        if (pending.length > 0) record(labels, pending[0]!.line);
        stack.push(labels);
        pending = [];
        assigned = undefined;
        break;
      }
      case '}':
      case ']':
        stack.pop();
        pending = [];
        assigned = undefined;
        break;
      case ',':
        pending = [];
        assigned = undefined;
        break;
      default:
        break;
    }
  }
  return {
    line(key: string) {
      for (let parts = key.split('.'); parts.length > 0; parts = parts.slice(0, -1)) {
        const l = lines.get(parts.join('.'));
        if (l !== undefined) return l;
      }
      return undefined;
    },
  };
}
