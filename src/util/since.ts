// The one reading of report's `--since` value: a UTC day or an ISO 8601 time. Its own
// file so the CLI can check the option before it loads the command.

/** "2024-05-01" (UTC midnight) or an ISO 8601 time, as epoch ms; null when it is neither. */
export function parseSince(s: string): number | null {
  const t = s.trim();
  const ms = /^\d{4}-\d{2}-\d{2}$/.test(t) ? Date.parse(`${t}T00:00:00Z`) : /^\d{4}-\d{2}-\d{2}T/.test(t) ? Date.parse(t) : NaN;
  return Number.isFinite(ms) ? ms : null;
}
