// Starts a real fakemx server on 127.0.0.1:0 for a test, with a fresh corpus directory
// and fast settings (no banner/error delay); every key can be overridden per test.
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type FakemxServer } from '../../src/server.js';
import { idOfMaildirName } from '../../src/store/layout.js';
import type { MessageMetadata } from '../../src/store/metadata.js';

export interface TestServer {
  server: FakemxServer;
  port: number;
  store: string;
  close(): Promise<void>;
  /** Stored messages (.eml files, or Maildir files in new/): [file bytes, metadata, path]. */
  messages(): { eml: Buffer; meta: MessageMetadata; path: string }[];
  /** Every file under the store, including temporaries (for leak checks). */
  files(): string[];
}

export const FAST = {
  listenAddress: '127.0.0.1',
  listenPort: 0,
  hostName: 'mx.test',
  bannerDelay: 0,
  errorDelay: 0,
  receiveTimeout: 5000,
  maxSessions: 200,
  maxSessionsPerIp: 200,
};

export async function startServer(overrides: Record<string, unknown> = {}): Promise<TestServer> {
  const store = mkdtempSync(join(tmpdir(), 'fakemx-test-'));
  const server = createServer({ config: { ...FAST, storePath: join(store, 'corpus'), ...overrides } });
  const [l] = await server.listen();
  const corpus = join(store, 'corpus');
  const files = () => {
    if (!existsSync(corpus)) return [];
    const out: string[] = [];
    for (const d of readdirSync(corpus)) for (const f of readdirSync(join(corpus, d))) out.push(join(d, f));
    return out.sort();
  };
  return {
    server,
    port: l!.port,
    store: corpus,
    files,
    messages() {
      const eml = files()
        .filter((f) => f.endsWith('.eml') && !f.includes('.tmp-'))
        .map((f) => {
          const path = join(corpus, f);
          return { eml: readFileSync(path), meta: JSON.parse(readFileSync(path.replace(/\.eml$/, '.json'), 'utf8')) as MessageMetadata, path };
        });
      // store.format maildir: <day>/new/<unique name>, its record <day>/<id>.json.
      const maildir = files()
        .filter((f) => f.endsWith('/new'))
        .flatMap((f) => readdirSync(join(corpus, f)).map((n) => ({ path: join(corpus, f, n), id: idOfMaildirName(n) })))
        .filter((m) => m.id !== null)
        .map(({ path, id }) => ({ eml: readFileSync(path), meta: JSON.parse(readFileSync(join(path, '..', '..', `${id}.json`), 'utf8')) as MessageMetadata, path }));
      return [...eml, ...maildir];
    },
    async close() {
      await server.close(500);
      rmSync(store, { recursive: true, force: true });
    },
  };
}
