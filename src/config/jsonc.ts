// Config files may carry comments (JSON with // and /* */ comments, as `fakemx init` writes
// them): they are blanked out before JSON.parse, newlines kept, so a parse error still names
// the right line and column. Nothing else of JSON5 (no trailing commas, no single quotes).
// A key given twice in one object is found here too: JSON.parse keeps the last one silently.

export function stripJsonComments(text: string): string {
  let out = '';
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    if (c === '"') {
      // A string, escapes included, copied as it is.
      let j = i + 1;
      while (j < n && text[j] !== '"' && text[j] !== '\n') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (c === '/' && text[i + 1] === '/') {
      let j = i;
      while (j < n && text[j] !== '\n') j++;
      out += ' '.repeat(j - i);
      i = j;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      const j = end < 0 ? n : end + 2;
      out += text.slice(i, j).replace(/[^\n]/g, ' ');
      i = j;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/**
 * The first key that occurs twice in one object of `json` (text JSON.parse has accepted), as
 * its path: `listenPort`, `listeners[1].profile.storeData`; null when there is none. Keys are
 * compared as JSON.parse reads them ("a\u0062" is "ab"). Walked without recursion.
 */
export function duplicateKey(json: string): string | null {
  /** An open object (keys seen, the current key) or array (keys null, the current index). */
  interface Open {
    keys: Set<string> | null;
    path: string;
    key: string;
    index: number;
  }
  const stack: Open[] = [];
  const pathOf = (o: Open) => (o.keys ? (o.path ? `${o.path}.${o.key}` : o.key) : `${o.path}[${o.index}]`);
  let expectKey = false;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === '"') {
      let j = i + 1;
      while (json[j] !== '"') j += json[j] === '\\' ? 2 : 1;
      const top = stack[stack.length - 1];
      if (expectKey && top?.keys) {
        top.key = JSON.parse(json.slice(i, j + 1)) as string;
        if (top.keys.has(top.key)) return pathOf(top);
        top.keys.add(top.key);
        expectKey = false;
      }
      i = j;
    } else if (c === '{' || c === '[') {
      const top = stack[stack.length - 1];
      stack.push({ keys: c === '{' ? new Set() : null, path: top ? pathOf(top) : '', key: '', index: 0 });
      expectKey = c === '{';
    } else if (c === '}' || c === ']') stack.pop();
    else if (c === ',') {
      const top = stack[stack.length - 1]!;
      if (top.keys) expectKey = true;
      else top.index++;
    }
  }
  return null;
}
