// The production configs as their service managers run them: every path the daemon writes
// (storePath, logPath, state.path) is absolute and inside what the unit or image makes
// writable. A relative path (or "", which means one) is resolved against the working
// directory, which is WorkingDirectory=/var/lib/fakemx for the daemon but the operator's shell
// for `fakemx state -c /etc/fakemx/fakemx.json`: a relative state.path opens (and creates) a
// second, empty store there instead of the daemon's.
import { readFileSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function inside(path: string, roots: string[]): boolean {
  return isAbsolute(path) && roots.some((r) => {
    const rel = relative(r, path);
    return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
  });
}

function written(file: string, env: NodeJS.ProcessEnv): Record<string, string> {
  const { config } = loadConfig({ file: join(ROOT, file), env });
  return { storePath: config.storePath, logPath: config.logPath, 'state.path': config.state.path };
}

describe('production configs write only where their unit or image allows', () => {
  it('systemd/fakemx.json: under StateDirectory/LogsDirectory of both units, whatever the cwd', () => {
    for (const unit of ['fakemx.service', 'fakemx-activated.service']) {
      const text = readFileSync(join(ROOT, 'systemd', unit), 'utf8');
      const roots = [
        ...[...text.matchAll(/^StateDirectory=(.+)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/).map((d) => `/var/lib/${d}`)),
        ...[...text.matchAll(/^LogsDirectory=(.+)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/).map((d) => `/var/log/${d}`)),
      ];
      expect(roots.length, unit).toBeGreaterThan(0);
      for (const [key, path] of Object.entries(written('systemd/fakemx.json', {}))) {
        expect(inside(path, roots), `${unit}: ${key} = "${path}" must be an absolute path under ${roots.join(' or ')}`).toBe(true);
      }
    }
  });

  it('config/docker.json with the image ENV: under the VOLUME', () => {
    const df = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const volume = /^VOLUME (\S+)$/m.exec(df)![1]!;
    const env = Object.fromEntries([...df.matchAll(/^ENV (FAKEMX_\w+)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
    for (const [key, path] of Object.entries(written('config/docker.json', env))) {
      expect(inside(path, [volume]), `${key} = "${path}" must be an absolute path under ${volume}`).toBe(true);
    }
  });
});
