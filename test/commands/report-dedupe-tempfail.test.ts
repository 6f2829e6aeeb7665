// config/corpus.json with store.dedupe: every message is stored, then tempfailed (421 after the
// final dot). A duplicate arrival is tempfailed like the first copy; its arrival record says
// so and `fakemx report` counts it in Tempfailed, so the share is of every delivery (100%
// here), not of the stored files only. Real server on 127.0.0.1.
import { afterEach, describe, expect, it } from 'vitest';
import { buildReport } from '../../src/commands/report.js';
import { greeted } from '../helpers/client.js';
import { startServer } from '../helpers/server.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('report: tempfailed duplicate arrivals', () => {
  it('counts an arrival that got the tempfail as tempfailed', async () => {
    const srv = await startServer({ storeData: true, doTempFail: true, store: { dedupe: true } });
    cleanups.push(() => srv.close());
    const body = 'Subject: same\r\n\r\nbuy now\r\n';
    for (const [helo, text] of [['a.example', body], ['b.example', body], ['c.example', body], ['d.example', 'Subject: other\r\n\r\nelse\r\n']] as const) {
      const c = await greeted(srv.port, helo);
      cleanups.push(() => c.close());
      expect((await c.cmd('MAIL FROM:<x@spam.example>')).code).toBe(250);
      expect((await c.cmd('RCPT TO:<y@mx.test>')).code).toBe(250);
      expect((await c.cmd('DATA')).code).toBe(354);
      expect((await c.cmd(`${text}.`)).raw).toMatch(/^421 4\.3\.2 /);
      c.close();
    }
    const r = await buildReport({ dir: srv.store });
    expect([r.messages, r.stored]).toEqual([4, 2]);
    expect(r.duplicates.arrivals).toBe(2);
    expect(r.tempfailed).toBe(4);
  });
});
