// The corpus layout on disk, in one place: one directory per UTC day (YYYY-MM-DD) under
// storePath, each message's metadata record as <id>.json in it, and a per-day journal of
// those records (.journal, one JSON line each, the durable copy: see corpus.ts). The message
// itself is, by store.format:
//   eml:     <day>/<id>.eml, written as <day>/.tmp-<id>.eml until durable;
//   maildir: <day>/new/<unique>, written as <day>/tmp/<unique> (each day directory is a
//            Maildir: tmp/, new/, cur/), <unique> = <sec>.M<usec>P<pid>Q<seq>R<id>.<host>.
// Temporaries are never read as part of the corpus. The store writes it; `fakemx report`
// reads the records. Beside the days, the console keeps its corpus index snapshot.

export type StoreFormat = 'eml' | 'maildir';

/** A day directory's name. */
export const DAY_DIR = /^\d{4}-\d{2}-\d{2}$/;

/** Prefix of a file not yet durable (never read as part of the corpus). */
export const TEMP_PREFIX = '.tmp-';

/** The per-day journal of metadata records (and duplicate arrivals), one JSON object a line. */
export const JOURNAL = '.journal';

/**
 * The console's corpus index snapshot in a store path (a dot file: the store, report and
 * pruning look only at day directories; the disk cap counts it), and its temporary: one fixed
 * name, so a crash mid-write leaves at most one, overwritten by the next snapshot.
 */
export const INDEX_SNAPSHOT = '.console-index.jsonl';
export const INDEX_SNAPSHOT_TMP = `${INDEX_SNAPSHOT}.tmp`;

/** A Maildir's three subdirectories (maildir(5)). */
export const MAILDIR_SUBDIRS = ['tmp', 'new', 'cur'] as const;

/** The day directory a message received at `at` goes to (UTC). */
export function dayOf(at: Date): string {
  return at.toISOString().slice(0, 10);
}

/** A finished metadata record's file name (not a temporary). */
export function isRecordFile(name: string): boolean {
  return name.endsWith('.json') && !name.startsWith(TEMP_PREFIX);
}

/** The host part of a Maildir name: "/" and ":" cannot appear in it (maildir(5): \057, \072). */
export function maildirHost(host: string): string {
  const h = host.replace(/\//g, '\\057').replace(/:/g, '\\072');
  return h === '' ? 'localhost' : h;
}

/**
 * A Maildir unique name: seconds, then M<microseconds>, P<pid>, Q<per-process sequence>, R<the
 * fakemx id> (which carries random bits), then the host. Unique per host by pid and sequence,
 * sortable by time, and it names the message id the logs and the record use.
 */
export function maildirName(at: Date, id: string, seq: number, pid: number, host: string): string {
  const ms = at.getTime();
  return `${Math.floor(ms / 1000)}.M${(ms % 1000) * 1000}P${pid}Q${seq}R${id}.${maildirHost(host)}`;
}

/** The fakemx id inside a Maildir name (also with a ":2,<flags>" suffix added by a reader), or null. */
export function idOfMaildirName(name: string): string | null {
  return /^\d+\.M\d+P\d+Q\d+R([0-9a-z]+)\./.exec(name)?.[1] ?? null;
}
