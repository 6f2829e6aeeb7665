// The corpus layout on disk, in one place: one directory per UTC day (YYYY-MM-DD) under
// storePath, each message as <id>.eml beside its <id>.json record, and temporaries under a
// ".tmp-" prefix until they are durable. The store writes it; `fakemx report` reads it.

/** A day directory's name. */
export const DAY_DIR = /^\d{4}-\d{2}-\d{2}$/;

/** Prefix of a file not yet durable (never read as part of the corpus). */
export const TEMP_PREFIX = '.tmp-';

/** The day directory a message received at `at` goes to (UTC). */
export function dayOf(at: Date): string {
  return at.toISOString().slice(0, 10);
}

/** A finished metadata record's file name (not a temporary). */
export function isRecordFile(name: string): boolean {
  return name.endsWith('.json') && !name.startsWith(TEMP_PREFIX);
}
