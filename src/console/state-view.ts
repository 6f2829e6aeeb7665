// The console's State page behind /api/state: bounded, resumable pages of the state store's
// entries (greylist triplets, allowlisted networks, client cache pass/fail, traps), searched
// with the `fakemx state` CLI's own filter, and the allow/deny/trap/delete writes the CLI makes.

import { addEntry, addProblem, compileFilter, ENTRY_KINDS, EntryProblem, entryView, isEntryKey, targetOf, TTL_RANGE, type AddWhat, type StateFilter } from '../state/entries.js';
import type { Config } from '../config/schema.js';
import type { StateStore } from '../state/store.js';

const STATE_PAGE = 50;
const STATE_PAGE_MAX = 200;
/**
 * Keys one request examines at most: a search that matches little in a large store answers
 * with what it found and a cursor after this many, instead of walking the whole store while
 * the daemon's sessions wait (LMDB reads happen in the calling turn).
 */
export const SCAN_BUDGET = 5_000;
/** A cursor or key from a request, at most (keys hold two e-mail addresses at most). */
const MAX_PARAM = 2048;

export interface StateQuery {
  kind?: string | null;
  q?: string | null;
  cursor?: string | null;
  limit?: number | null;
}

export type StateAnswer = { status: number; body: Record<string, unknown> };

const bad = (error: string): StateAnswer => ({ status: 400, body: { error } });

/**
 * The search box: an IP address finds the entries about it (and the networks holding it), a
 * CIDR network the entries inside it, anything else is a case-insensitive substring of the key
 * or value (a sender, a recipient, a test name).
 */
function filterOf(kind: string | undefined, q: string): StateFilter {
  const f: StateFilter = kind ? { kind } : {};
  if (!q) return f;
  const t = targetOf(q);
  if (t === null) return { ...f, grep: q };
  return t.includes('/') ? { ...f, net: t } : { ...f, ip: t };
}

/** One page: `GET /api/state?kind=&q=&cursor=&limit=`. */
export async function listState(store: StateStore, query: StateQuery): Promise<StateAnswer> {
  const kind = query.kind?.trim() || undefined;
  if (kind !== undefined && !(ENTRY_KINDS as readonly string[]).includes(kind)) return bad(`kind must be one of ${ENTRY_KINDS.join(', ')}`);
  const q = (query.q ?? '').trim().slice(0, 256);
  const cursor = query.cursor || null;
  if (cursor !== null && cursor.length > MAX_PARAM) return bad('cursor too long');
  const limit = Math.max(1, Math.min(STATE_PAGE_MAX, query.limit ?? STATE_PAGE));
  const match = compileFilter(filterOf(kind, q));
  let page;
  try {
    page = await store.scanPage(kind ? `${kind}:` : '', cursor, { limit, budget: SCAN_BUDGET, keep: (e) => isEntryKey(e.key) && match(e) });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    return msg.includes('bad scan cursor') ? bad('bad cursor') : { status: 503, body: { error: msg } };
  }
  const now = store.clock();
  const health = store.health();
  return {
    status: 200,
    body: {
      backend: store.kind,
      items: page.entries.map((e) => entryView(e, now)),
      cursor: page.cursor,
      examined: page.examined,
      now,
      ...(health.ok ? {} : { note: health.note }),
    },
  };
}

/** What a write asks for, validated; or the 400 to answer. */
export function parseWrite(body: string): { action: AddWhat; target: string; ttlMs?: number } | StateAnswer {
  let o: unknown;
  try {
    o = JSON.parse(body);
  } catch {
    return bad('body must be JSON: {"action": "allow"|"deny"|"trap", "target": "<ip or cidr>", "ttlMs"?: n}');
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return bad('body must be a JSON object');
  const { action, target, ttlMs } = o as Record<string, unknown>;
  if (action !== 'allow' && action !== 'deny' && action !== 'trap') return bad('action must be allow, deny or trap');
  const t = typeof target === 'string' ? targetOf(target) : null;
  if (t === null) return bad('target must be an IP address or (allow) a CIDR network');
  const problem = addProblem(action, t);
  if (problem) return bad(problem);
  if (ttlMs !== undefined && (typeof ttlMs !== 'number' || !Number.isInteger(ttlMs) || ttlMs < TTL_RANGE.min || ttlMs > TTL_RANGE.max)) return bad(`ttlMs must be a whole number of milliseconds ${TTL_RANGE.text}`);
  return { action, target: t, ...(ttlMs !== undefined ? { ttlMs } : {}) };
}

export async function addState(store: StateStore, config: Config, w: { action: AddWhat; target: string; ttlMs?: number }): Promise<StateAnswer & { key?: string }> {
  try {
    const { keys: ks, ttlMs, widened } = await addEntry(store, w.action, w.target, w.ttlMs, config, 'console');
    // key: the first (most adds are one); keys: all an allow for a wide network made.
    return { status: 200, body: { key: ks[0], keys: ks, ttlMs, widened }, key: ks[0]! };
  } catch (e) {
    if (e instanceof EntryProblem) return { status: 400, body: { error: e.message } };
    return { status: 503, body: { error: e instanceof Error ? e.message : String(e) } };
  }
}

/** `DELETE /api/state?key=`: any entry the page lists, by its key. */
export async function deleteState(store: StateStore, key: string): Promise<StateAnswer> {
  if (key.length > MAX_PARAM || !isEntryKey(key)) return bad('key must be an entry key as the list shows it');
  try {
    const had = await store.del(key);
    return had ? { status: 200, body: { deleted: key } } : { status: 404, body: { error: 'no such entry' } };
  } catch (e) {
    return { status: 503, body: { error: e instanceof Error ? e.message : String(e) } };
  }
}
