// mkdir -p, one directory at a time. Node's own (mkdir with `recursive: true`, sync or not)
// never returns where a parent answers ENOENT to every new child, as /proc does: it retries
// at 100 % CPU and the process no longer answers SIGTERM. Here the work is bounded by the
// path's depth. Same result as Node's: the first directory made, or undefined if none was.

import { mkdirSync, statSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

function notDirectory(path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${path}'`), { code: 'ENOTDIR', path, syscall: 'mkdir' });
}

/** One file-system call the walk asks for, and what came of it. */
type Step = { op: 'stat' | 'mkdir'; path: string };
type Outcome = { isDir: boolean; err: null } | { isDir: false; err: NodeJS.ErrnoException };

/** The walk, written once for both drivers: up to the nearest directory, then down making each. */
function* walk(dir: string): Generator<Step, string | undefined, Outcome> {
  const missing: string[] = [];
  for (let cur = resolve(dir); ; ) {
    const r = yield { op: 'stat', path: cur };
    if (r.err === null) {
      if (!r.isDir) throw notDirectory(cur);
      break;
    }
    // Anything but "not there" (EACCES, ENOTDIR) is the answer; so is a missing root.
    const up = dirname(cur);
    if (r.err.code !== 'ENOENT' || up === cur) throw r.err;
    missing.push(cur);
    cur = up;
  }
  let first: string | undefined;
  for (const d of missing.reverse()) {
    const r = yield { op: 'mkdir', path: d };
    if (r.err === null) {
      first ??= d;
      continue;
    }
    // Made meanwhile by someone else: fine if it is a directory.
    const again = r.err.code === 'EEXIST' ? yield { op: 'stat', path: d } : r;
    if (again.err !== null || !again.isDir) throw r.err;
  }
  return first;
}

async function perform(s: Step, mode: number): Promise<Outcome> {
  try {
    return { isDir: s.op === 'stat' ? (await stat(s.path)).isDirectory() : (await mkdir(s.path, mode), true), err: null };
  } catch (err) {
    return { isDir: false, err: err as NodeJS.ErrnoException };
  }
}

function performSync(s: Step, mode: number): Outcome {
  try {
    return { isDir: s.op === 'stat' ? statSync(s.path).isDirectory() : (mkdirSync(s.path, mode), true), err: null };
  } catch (err) {
    return { isDir: false, err: err as NodeJS.ErrnoException };
  }
}

export async function mkdirp(dir: string, mode = 0o777): Promise<string | undefined> {
  const steps = walk(dir);
  for (let n = steps.next(); ; n = steps.next(await perform(n.value, mode))) if (n.done) return n.value;
}

export function mkdirpSync(dir: string, mode = 0o777): string | undefined {
  const steps = walk(dir);
  for (let n = steps.next(); ; n = steps.next(performSync(n.value, mode))) if (n.done) return n.value;
}
