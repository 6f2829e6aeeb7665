// The list files a config points at: localDomains, localMailboxes (one entry a line,
// `#` comments, case-insensitive), accessList (`permit|reject CIDR`, first match wins) and
// greylist.allowList (senders/recipients never greylisted).
// Read whole at load/reload time, so a missing or malformed file is a config error then.

import { readCapped } from '../util/read-capped.js';
import { parseCidr, type Cidr } from '../net/ip.js';

/** A list file problem; the loader turns it into a ConfigError naming the key. */
export class ListError extends Error {}

const MAX_LIST_BYTES = 64 * 1024 * 1024;

function lines(path: string): { text: string; no: number }[] {
  let buf: Buffer | null;
  try {
    buf = readCapped(path, MAX_LIST_BYTES);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ListError(code === 'ENOENT' ? `list file ${path} does not exist` : `cannot read list file ${path}: ${code ?? String(e)}`);
  }
  if (buf === null) throw new ListError(`list file ${path} is larger than ${MAX_LIST_BYTES} bytes`);
  const out: { text: string; no: number }[] = [];
  buf.toString('utf8').split('\n').forEach((raw, i) => {
    const hash = raw.indexOf('#');
    const text = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (text) out.push({ text, no: i + 1 });
  });
  return out;
}

export function readDomains(path: string): Set<string> {
  const set = new Set<string>();
  for (const { text, no } of lines(path)) {
    const d = text.toLowerCase().replace(/\.$/, '');
    if (/\s|@/.test(d)) throw new ListError(`${path}:${no}: not a domain: "${text}"`);
    set.add(d);
  }
  return set;
}

export function readMailboxes(path: string): Set<string> {
  const set = new Set<string>();
  for (const { text, no } of lines(path)) {
    const at = text.lastIndexOf('@');
    if (at <= 0 || at === text.length - 1 || /\s/.test(text)) throw new ListError(`${path}:${no}: not a mailbox local@domain: "${text}"`);
    set.add(text.toLowerCase());
  }
  return set;
}

/** One `permit CIDR` / `reject CIDR` line of an access list (postscreen_access_list). */
export interface AccessRule {
  action: 'permit' | 'reject';
  cidr: Cidr;
}

export function readAccessList(path: string): AccessRule[] {
  const rules: AccessRule[] = [];
  for (const { text, no } of lines(path)) {
    const m = /^(permit|reject)\s+(\S+)$/i.exec(text);
    if (!m) throw new ListError(`${path}:${no}: expected "permit CIDR" or "reject CIDR", got "${text}"`);
    try {
      rules.push({ action: m[1]!.toLowerCase() as 'permit' | 'reject', cidr: parseCidr(m[2]!) });
    } catch (e) {
      throw new ListError(`${path}:${no}: ${(e as Error).message}`);
    }
  }
  return rules;
}

/**
 * greylist.allowList: senders and recipients never greylisted. One entry a line, `#` comments:
 * `user@example.com` (that address), `@example.com` or `example.com` (the domain), each
 * optionally prefixed `from:` or `to:` to match only the sender or only the recipient.
 */
export interface GreylistAllow {
  from: ReadonlySet<string>;
  to: ReadonlySet<string>;
}

export function parseGreylistAllow(text: string, where = 'allowList'): GreylistAllow {
  const from = new Set<string>();
  const to = new Set<string>();
  text.split('\n').forEach((raw, i) => {
    const hash = raw.indexOf('#');
    let t = (hash >= 0 ? raw.slice(0, hash) : raw).trim().toLowerCase();
    if (!t) return;
    let side: 'from' | 'to' | 'both' = 'both';
    const m = /^(from|to):\s*(.*)$/.exec(t);
    if (m) {
      side = m[1] as 'from' | 'to';
      t = m[2]!;
    }
    if (!t.includes('@')) t = `@${t}`;
    if (/\s/.test(t) || t.endsWith('@') || t.indexOf('@') !== t.lastIndexOf('@')) throw new ListError(`${where}:${i + 1}: not an address or domain: "${raw.trim()}"`);
    if (side !== 'to') from.add(t);
    if (side !== 'from') to.add(t);
  });
  return { from, to };
}

export function readGreylistAllow(path: string): GreylistAllow {
  // lines() reads (and bounds) the file; parse with the original line numbers.
  const byNo = lines(path);
  const last = byNo.length > 0 ? byNo[byNo.length - 1]!.no : 0;
  const text: string[] = new Array<string>(last).fill('');
  for (const { text: t, no } of byNo) text[no - 1] = t;
  return parseGreylistAllow(text.join('\n'), path);
}

/** The lists one loaded config uses, read once; a reload builds a new one. */
export class ListSet {
  private readonly domainsMap = new Map<string, Set<string>>();
  private readonly mailboxesMap = new Map<string, Set<string>>();
  private readonly accessMap = new Map<string, AccessRule[]>();
  private readonly greyAllowMap = new Map<string, GreylistAllow>();

  domains(path: string): Set<string> {
    let v = this.domainsMap.get(path);
    if (!v) this.domainsMap.set(path, (v = readDomains(path)));
    return v;
  }

  mailboxes(path: string): Set<string> {
    let v = this.mailboxesMap.get(path);
    if (!v) this.mailboxesMap.set(path, (v = readMailboxes(path)));
    return v;
  }

  greylistAllow(path: string): GreylistAllow {
    let v = this.greyAllowMap.get(path);
    if (!v) this.greyAllowMap.set(path, (v = readGreylistAllow(path)));
    return v;
  }

  access(path: string): AccessRule[] {
    let v = this.accessMap.get(path);
    if (!v) this.accessMap.set(path, (v = readAccessList(path)));
    return v;
  }
}
