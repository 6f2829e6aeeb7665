// The one line `fakemx run` logs once it is up (tag READY): where it listens, how to try it,
// where the corpus, the logs and the console are. What a new user reads first.

import { effectiveListeners, storePathsInUse } from './config/effective.js';
import type { ListSet } from './config/lists.js';
import type { LoadedConfig } from './config/load.js';
import type { PolicyConfig } from './config/schema.js';
import type { ListenerInfo } from './events.js';
import { hostPort } from './net/ip.js';

/** A host a client on this machine can reach for a listener bound to `address` (a wildcard becomes loopback). */
function reachable(address: string): string {
  if (address === '0.0.0.0' || address === '') return '127.0.0.1';
  if (address === '::') return '::1';
  return address;
}

export function swaksCommand(l: ListenerInfo, to = 'user@example.com'): string {
  const host = reachable(l.address);
  const server = host.includes(':') ? `--server ${host} --port ${l.port}` : `--server ${host}:${l.port}`;
  const tls = l.tls === 'implicit' ? ' --tls-on-connect' : l.tls === 'starttls' ? ' --tls' : '';
  return `swaks ${server}${tls} --to ${to}`;
}

/**
 * A recipient the listener accepts, so the suggested command is not refused (550 relaying
 * denied): the first of localMailboxes, else a user at the first of localDomains, from the
 * lists the config loader read (no file is read again).
 */
function sampleRecipient(p: Pick<PolicyConfig, 'localDomains' | 'localMailboxes'>, lists: ListSet): string {
  let to: string | undefined;
  if (p.localMailboxes) to = lists.mailboxes(p.localMailboxes).values().next().value;
  else if (p.localDomains) {
    const d = lists.domains(p.localDomains).values().next().value;
    if (d !== undefined) to = `user@${d}`;
  }
  // Pasted into a shell as is: letters, digits and . _ + - only (no quoting needed).
  return to !== undefined && /^[A-Za-z0-9._+-]+@[A-Za-z0-9.-]+$/.test(to) ? to : 'user@example.com';
}

/** `logFiles`: whether the files under logPath are written (logger.ts logFilesOpen); false says they are not. */
export function startupLine(loaded: Pick<LoadedConfig, 'config' | 'lists'>, listening: readonly ListenerInfo[], logFiles = true): string {
  const { config } = loaded;
  const parts: string[] = [];
  parts.push(`fakemx ready: SMTP on ${listening.map((l) => hostPort(l.address, l.port) + (l.tls === 'none' ? '' : ` (${l.tls})`)).join(', ') || '(no listener)'}`);
  const effective = effectiveListeners(config);
  const first = listening[0];
  if (first) {
    const policy = (effective.find((l) => l.name === first.name) ?? effective[0])?.policy;
    parts.push(`try: ${swaksCommand(first, policy ? sampleRecipient(policy, loaded.lists) : undefined)}`);
  }
  const stores = storePathsInUse(effective);
  parts.push(stores.length > 0 ? `corpus in ${stores.join(', ')}` : 'messages are not stored (storeData false)');
  if (!config.logPath) parts.push('logs to stdout');
  else parts.push(logFiles ? `logs to stdout and ${config.logPath}` : `logs to stdout only (the files under ${config.logPath} failed, see stderr)`);
  if (config.http.port > 0) {
    const base = `http://${hostPort(reachable(config.http.address), config.http.port)}`;
    parts.push(config.http.console ? `console at ${base}/console/` : `health at ${base}/healthz (console off: http.console)`);
  } else parts.push('console off (http.port, http.console)');
  return parts.join('; ');
}
