// Printable rendering of raw client bytes for logs and metadata: \r, \n, \\ and \xNN,
// so nothing a client sends can start a new log line or hide in a terminal.

export function escapeBytes(b: Uint8Array): string {
  let s = '';
  for (const c of b) {
    if (c === 13) s += '\\r';
    else if (c === 10) s += '\\n';
    else if (c === 92) s += '\\\\';
    else if (c >= 32 && c < 127) s += String.fromCharCode(c);
    else s += '\\x' + c.toString(16).padStart(2, '0');
  }
  return s;
}
