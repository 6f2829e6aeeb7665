// The AUTH honeypot (RFC 4954): a listener with auth.enabled offers AUTH and every attempt
// fails. The engine runs the exchange and decodes it; this file decides the reply and what
// is recorded of the attempt: user, mechanism, client, TLS or not, and the password as
// auth.recordPasswords says (none, salted sha256, plain). Past auth.maxAttempts the session
// ends with 421; that last attempt is still recorded (its credentials are what is studied).
// Attempts go to the log and metric (AUTH verdict), the session's message records (its
// verdict list) and the corpus's per-day AUTH journal, which `fakemx report` reads.

import { createHash, randomBytes } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { readFileSync, writeFileSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuthConfig } from '../config/schema.js';
import type { AuthAttempt, SessionInfo } from '../smtp/hooks.js';
import type { Reply } from '../smtp/reply.js';
import { mkdirp, mkdirpSync } from '../util/mkdirp.js';
import { safeJson } from '../util/escape.js';

/** Longest user name or authzid kept in a record (a bot may send kilobytes). */
export const MAX_RECORDED = 256;

/**
 * RFC 4954 §6: 535 5.7.8 is "authentication credentials invalid". Never neutral: it counts
 * as an error, so the error tarpit (errorDelay x errors) delays it.
 */
export function authFailed(): Reply {
  return { code: 535, enhanced: '5.7.8', text: 'Authentication credentials invalid' };
}

/** auth.maxAttempts passed: 421 and close (RFC 5321 §3.8). */
export function tooManyAuthAttempts(): Reply {
  return { code: 421, enhanced: '4.7.0', text: 'too many AUTH attempts, closing connection', close: true, outcome: 'limit' };
}

/**
 * The password as the config says it is kept; undefined = not recorded. The hash is of the
 * octets the client sent when given (a password that is not UTF-8 would otherwise be hashed
 * with U+FFFD in place of its bytes, and different passwords would share a hash); for UTF-8
 * it is the same hash as of the string.
 */
export function passwordRecord(password: string | undefined, mode: AuthConfig['recordPasswords'], salt: string, octets?: Buffer): string | undefined {
  if (password === undefined || mode === 'none') return undefined;
  if (mode === 'plain') return password.length > MAX_RECORDED ? password.slice(0, MAX_RECORDED) : password;
  return createHash('sha256').update(salt).update('\0').update(octets ?? password).digest('hex');
}

function cut(s: string): string {
  return s.length > MAX_RECORDED ? s.slice(0, MAX_RECORDED) : s;
}

/** The AUTH verdict's details (log line, record, metric labels, report). */
export function authDetails(
  s: SessionInfo,
  a: AuthAttempt,
  cfg: Pick<AuthConfig, 'recordPasswords'>,
  salt: string,
  attempt: number,
): Record<string, unknown> {
  const pw = passwordRecord(a.password, cfg.recordPasswords, salt, a.passwordOctets);
  return {
    mechanism: a.mechanism,
    user: cut(a.user),
    // A user name that is not UTF-8 reads with U+FFFD in `user`: its octets too, so none is lost.
    ...(a.userOctets && !isUtf8(a.userOctets) ? { userBase64: a.userOctets.subarray(0, MAX_RECORDED).toString('base64') } : {}),
    ...(a.authzid !== undefined ? { authzid: cut(a.authzid) } : {}),
    tls: s.tls !== undefined,
    attempt,
    initialResponse: a.initialResponse,
    ...(pw !== undefined ? { password: pw, passwordFormat: cfg.recordPasswords } : {}),
    // Likewise a plain-recorded password: U+FFFD in `password` would lose the bytes tried.
    ...(cfg.recordPasswords === 'plain' && a.passwordOctets && !isUtf8(a.passwordOctets)
      ? { passwordBase64: a.passwordOctets.subarray(0, MAX_RECORDED).toString('base64') }
      : {}),
    // The challenge with the digest lets a guessed password be checked (HMAC-MD5, RFC 2195),
    // as a hash does: kept only when passwords are (recordPasswords sha256 or plain).
    ...(a.cram ? { cramDigest: cut(a.cram.digest), ...(cfg.recordPasswords !== 'none' ? { cramChallenge: cut(a.cram.challenge) } : {}) } : {}),
  };
}

/** The reply to attempt number `attempt` (1-based) of a session: 535, or 421 past maxAttempts. */
export function authReply(attempt: number, cfg: Pick<AuthConfig, 'maxAttempts'>): Reply {
  return attempt > cfg.maxAttempts ? tooManyAuthAttempts() : authFailed();
}

/**
 * The salt of the sha256 record: auth.salt, else a random one made once per install and kept
 * in `auth-salt` under the state directory (mode 0600), so hashes stay comparable across
 * restarts without the password being recoverable from the corpus alone.
 */
export function installSalt(cfg: Pick<AuthConfig, 'salt'>, stateDir: string): string {
  if (cfg.salt !== '') return cfg.salt;
  // stateDir: the loaded config's state.path, already resolved (config/load.ts).
  const file = join(stateDir, 'auth-salt');
  try {
    const s = readFileSync(file, 'utf8').trim();
    if (s !== '') return s;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  mkdirpSync(stateDir);
  const salt = randomBytes(32).toString('hex');
  try {
    // wx: a second process that raced us keeps its own salt; read back whichever won.
    writeFileSync(file, salt + '\n', { mode: 0o600, flag: 'wx' });
    return salt;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return readFileSync(file, 'utf8').trim();
  }
}

/**
 * The per-day AUTH journal in the corpus, `<storePath>/<day>/.auth`: one JSON line per
 * attempt, so `fakemx report` sees the attempts of sessions that never stored a message (most
 * credential stuffers). Appends are queued one at a time per corpus and best effort: an
 * attempt is not something the client was promised, so nothing is fsynced and a failed
 * write is dropped. It lives and is pruned with its day directory.
 */
export const AUTH_JOURNAL = '.auth';

export class AuthJournal {
  private tail: Promise<void> = Promise.resolve();
  /** Writes that failed (a full or read-only disk); the session never sees them. */
  failures = 0;

  constructor(readonly root: string) {}

  append(rec: Record<string, unknown>, at = new Date()): void {
    const dir = join(this.root, at.toISOString().slice(0, 10));
    const line = safeJson({ at: at.toISOString(), ...rec }) + '\n';
    this.tail = this.tail
      .then(() => mkdirp(dir))
      // 0640 like the rest of the corpus: it may hold the passwords tried (recordPasswords: plain).
      .then(() => appendFile(join(dir, AUTH_JOURNAL), line, { mode: 0o640 }))
      .catch(() => {
        this.failures++;
      });
  }

  /** Resolves when every append so far has been written (tests, shutdown). */
  flushed(): Promise<void> {
    return this.tail;
  }
}

const journals = new Map<string, AuthJournal>();

/** One journal per corpus directory, shared by the policies (and reloads) that write there. */
export function authJournalFor(storePath: string): AuthJournal {
  let j = journals.get(storePath);
  if (!j) journals.set(storePath, (j = new AuthJournal(storePath)));
  return j;
}
