/**
 * JSON.parse keeps the last of duplicate keys silently; bundle documents must reject
 * them instead. Call on text that JSON.parse has already accepted. Returns the first
 * repeated key, or undefined.
 */
export function findDuplicateKey(text: string): string | undefined {
  const stack: (Set<string> | null)[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '{') stack.push(new Set());
    else if (c === '[') stack.push(null);
    else if (c === '}' || c === ']') stack.pop();
    else if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const value = JSON.parse(text.slice(i, j + 1)) as string;
      let k = j + 1;
      while (k < text.length && ' \t\r\n'.includes(text[k] as string)) k++;
      const top = stack[stack.length - 1];
      if (text[k] === ':' && top) {
        if (top.has(value)) return value;
        top.add(value);
      }
      i = j;
    }
  }
  return undefined;
}
