// The floor under the store benchmark (issue 15): the file operations each server's durability
// scheme needs per message, with no SMTP around them, in one process, 20 messages in flight,
// patterns run alternately in rounds. Shows what rate a disk allows each scheme before any
// protocol work is added:
//   smtp-server: bench/smtp-server-sink.mjs's steps (FileHandle: open, write, sync, close,
//                rename, then open, fsync and close the directory, per message; pool of 4)
//   fakemx:      src/store's steps (open O_EXCL, writev, fdatasync of the message while its
//                record joins a group commit: one journal append + fdatasync per batch, then
//                rename and an unsynced <id>.json, one directory fsync per batch; pool of 16)
//   minimum:     fakemx's scheme without the record file (open, write, fdatasync, close,
//                rename; one directory fsync per batch; pool of 16): the least any
//                one-file-per-message scheme that renames into place can do
//   journal-only: fakemx's scheme without <id>.json (the record only in the journal)
//   json-after:  fakemx's scheme with <id>.json written after the answer, not before it
// Prints per round each pattern's files/s and CPU µs per file (the process's user + system, so
// the kernel's share of each syscall counts), and each pattern's median ratio to smtp-server's
// rate. Usage: node bench/durable-floor.mjs [--rounds 5] [--messages 6000] [--dir bench/out]

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { open as openP, rename as renameP } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const argv = process.argv.slice(2);
const opt = (n, d) => {
  const i = argv.indexOf(`--${n}`);
  return i >= 0 ? argv[i + 1] : d;
};
const SELF = fileURLToPath(import.meta.url);
const IN_FLIGHT = 20;
const BODY = Buffer.alloc(4096 + 600, 97); // smtp-source -l 4096 plus the headers fakemx adds
const RECORD = Buffer.alloc(900, 98); // a typical <id>.json record line

if (argv[0] === '--child') {
  const [, pattern, dir, n] = argv;
  child(pattern, dir, Number(n));
} else {
  parent();
}

function parent() {
  const rounds = Number(opt('rounds', 5));
  const n = Number(opt('messages', 6000));
  const base = opt('dir', join(SELF, '../out'));
  const patterns = [
    ['smtp-server', '4'],
    ['fakemx', '16'],
    ['minimum', '16'],
    ['journal-only', '16'],
    ['json-after', '16'],
  ];
  const rates = Object.fromEntries(patterns.map(([p]) => [p, []]));
  const ratios = Object.fromEntries(patterns.map(([p]) => [p, []]));
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? patterns : [...patterns].reverse();
    const got = {};
    for (const [p, pool] of order) {
      const dir = join(base, `durable-floor-${p}`);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir, { recursive: true });
      const c = spawnSync(process.execPath, [SELF, '--child', p, dir, String(n)], {
        env: { ...process.env, UV_THREADPOOL_SIZE: pool },
        encoding: 'utf8',
      });
      fs.rmSync(dir, { recursive: true, force: true });
      if (c.status !== 0) throw new Error(`${p}: ${c.stderr}`);
      got[p] = JSON.parse(c.stdout);
      rates[p].push(got[p].rate);
      console.log(`round ${r + 1} ${p.padEnd(11)} pool ${pool.padStart(2)}  ${got[p].rate.toFixed(0).padStart(5)} files/s  ${got[p].cpuUs.toFixed(0).padStart(4)} µs CPU/file`);
    }
    for (const [p] of patterns) ratios[p].push(got[p].rate / got['smtp-server'].rate);
  }
  const med = (a) => [...a].sort((x, y) => x - y)[Math.floor((a.length - 1) / 2)];
  console.log('\nmedian files/s, and median of the per-round ratios to smtp-server:');
  for (const [p] of patterns) {
    console.log(`  ${p.padEnd(11)} ${med(rates[p]).toFixed(0).padStart(5)} files/s  ${med(ratios[p]).toFixed(2)}× (rounds: ${ratios[p].map((x) => x.toFixed(2)).join(', ')})`);
  }
}

function child(pattern, dir, n) {
  let started = 0;
  let done = 0;
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  const finish = () => {
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0);
    process.stdout.write(JSON.stringify({ rate: n / s, cpuUs: (c.user + c.system) / n }));
  };
  const next = (err) => {
    if (err) throw err;
    done++;
    if (started < n) one();
    else if (done === n) finish();
  };
  // Group commits: whatever waits when the previous batch ends forms the next (as journal.ts).
  const group = (run) => {
    let waiting = [];
    let busy = false;
    const go = () => {
      if (waiting.length === 0) return void (busy = false);
      busy = true;
      const batch = waiting;
      waiting = [];
      run(batch, () => {
        for (const f of batch) f.cb();
        go();
      });
    };
    return (item) => {
      waiting.push(item);
      if (!busy) go();
    };
  };
  const dirSync = group((_batch, cb) =>
    fs.open(dir, 'r', (e, fd) => {
      if (e) throw e;
      fs.fsync(fd, () => fs.close(fd, cb));
    }),
  );
  const journal = join(dir, '.journal');
  const journalCommit = group((batch, cb) =>
    fs.open(journal, 'a', (e, fd) => {
      if (e) throw e;
      fs.writev(fd, batch.map(() => RECORD), () => fs.fdatasync(fd, () => fs.close(fd, cb)));
    }),
  );

  async function smtpServer(i) {
    const tmp = join(dir, `.tmp-${i}.eml`);
    const fh = await openP(tmp, 'w');
    try {
      await fh.writeFile(BODY);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await renameP(tmp, join(dir, `${i}.eml`));
    const d = await openP(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }

  function fakemx(i, withRecord, cb, withJournal = withRecord, recordAfter = false) {
    const tmp = join(dir, `.tmp-${i}.eml`);
    fs.open(tmp, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_RDWR, 0o640, (e, fd) => {
      if (e) return cb(e);
      fs.writev(fd, [BODY], (e2) => {
        if (e2) return cb(e2);
        let left = withJournal ? 2 : 1;
        const place = () => {
          if (--left > 0) return;
          let placing = withRecord ? 2 : 1;
          const placed = () => {
            if (--placing > 0) return;
            dirSync({
              cb: () =>
                fs.close(fd, () => {
                  cb(null);
                  if (recordAfter) fs.open(join(dir, `${i}.json`), 'w', 0o640, (e3, jfd) => !e3 && fs.writev(jfd, [RECORD], () => fs.close(jfd, () => {})));
                }),
            });
          };
          fs.rename(tmp, join(dir, `${i}.eml`), placed);
          if (withRecord) {
            fs.open(join(dir, `${i}.json`), 'w', 0o640, (e3, jfd) => {
              if (e3) return cb(e3);
              fs.writev(jfd, [RECORD], () => fs.close(jfd, placed));
            });
          }
        };
        fs.fdatasync(fd, place);
        if (withJournal) journalCommit({ cb: place });
      });
    });
  }

  const one = () => {
    const i = started++;
    if (pattern === 'smtp-server') smtpServer(i).then(() => next(), next);
    else fakemx(i, pattern === 'fakemx', next, pattern !== 'minimum', pattern === 'json-after');
  };
  for (let k = 0; k < IN_FLIGHT; k++) one();
}
