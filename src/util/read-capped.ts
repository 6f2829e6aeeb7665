// Reads a whole file a config names (the config itself, its list files) up to a cap, without
// first taking in what lies past it: readFileSync on /dev/zero, a pipe that never ends or a
// huge file grows its buffer until memory runs out (4 GB in 20 s for `-c /dev/zero`); here
// the read stops after cap + 1 octets.

import { closeSync, openSync, readSync } from 'node:fs';

/** Largest certificate, key or CA bundle read, in bytes (a system CA bundle is ~200 KiB). */
export const MAX_TLS_FILE_BYTES = 16 * 1024 * 1024;

/** The file's octets, or null when it holds more than `max`; errno errors are thrown as they are. */
export function readCapped(path: string, max: number): Buffer | null {
  const fd = openSync(path, 'r');
  try {
    // Doubling from 64 KiB: most such files are small, and the cap bounds the last step.
    let buf = Buffer.allocUnsafe(Math.min(max + 1, 65_536));
    let n = 0;
    for (;;) {
      if (n === buf.length) {
        if (n > max) return null;
        const bigger = Buffer.allocUnsafe(Math.min(max + 1, buf.length * 2));
        buf.copy(bigger, 0, 0, n);
        buf = bigger;
      }
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) return buf.subarray(0, n);
      n += got;
    }
  } finally {
    closeSync(fd);
  }
}
