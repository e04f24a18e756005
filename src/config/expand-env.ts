/**
 * `-expandEnv`: `$VAR` and `${VAR}` are replaced before parsing, with Go's os.Expand rules as spire-agent
 * uses them: unset variables become empty, `$$` is a literal `$`, `${}` is dropped, and a `$` not followed
 * by a name is kept as is.
 */
const SPECIAL = new Set(['*', '#', '$', '@', '!', '?', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
const ALNUM = /[A-Za-z0-9_]/;

function shellName(s: string): { name: string; width: number } {
  if (s[0] === '{') {
    if (s.length > 2 && SPECIAL.has(s[1]!) && s[2] === '}') return { name: s[1]!, width: 3 };
    const close = s.indexOf('}');
    if (close === 1) return { name: '', width: 2 };
    if (close < 0) return { name: '', width: 1 };
    return { name: s.slice(1, close), width: close + 1 };
  }
  if (SPECIAL.has(s[0]!)) return { name: s[0]!, width: 1 };
  let i = 0;
  while (i < s.length && ALNUM.test(s[i]!)) i++;
  return { name: s.slice(0, i), width: i };
}

export function expandEnv(text: string, env: Readonly<Record<string, string | undefined>> = process.env): string {
  let out = '';
  let from = 0;
  for (let j = 0; j < text.length; j++) {
    if (text[j] !== '$' || j + 1 >= text.length) continue;
    out += text.slice(from, j);
    const { name, width } = shellName(text.slice(j + 1));
    if (name === '' && width === 0) out += '$';
    else if (name === '$') out += '$';
    else if (name !== '') out += env[name] ?? '';
    j += width;
    from = j + 1;
  }
  return out + text.slice(from);
}
