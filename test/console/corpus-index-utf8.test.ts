// The Corpus list's Subject from a raw 8-bit header (RFC 6532 UTF-8, as much spam sends it,
// with or without SMTPUTF8): decoded as UTF-8 like the message view (postal-mime) does, not
// as Latin-1 ("Offre spÃ©ciale"), so the list and the subject filter match what the message
// page shows. A header block that is not UTF-8 is still read as Latin-1. Messages go through a
// real server on 127.0.0.1.
import { afterEach, describe, expect, it } from 'vitest';
import { CorpusIndex } from '../../src/console/corpus-index.js';
import { greeted } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function send(srv: TestServer, head: Buffer): Promise<void> {
  const c = await greeted(srv.port, 'bot.example');
  cleanups.push(() => c.close());
  expect((await c.cmd('MAIL FROM:<a@spam.example> BODY=8BITMIME')).code).toBe(250);
  expect((await c.cmd('RCPT TO:<b@mx.test>')).code).toBe(250);
  expect((await c.cmd('DATA')).code).toBe(354);
  c.send(Buffer.concat([head, Buffer.from('\r\nbody\r\n.\r\n')]));
  expect((await c.reply()).code).toBe(250);
  c.close();
}

describe('CorpusIndex: 8-bit subjects', () => {
  it('a raw UTF-8 Subject is listed and found as UTF-8; a Latin-1 one stays Latin-1', async () => {
    const srv = await startServer({ storeData: true });
    cleanups.push(() => srv.close());
    await send(srv, Buffer.from('From: x@spam.example\r\nSubject: Offre spéciale ünïcode ✓\r\n', 'utf8'));
    await send(srv, Buffer.from('From: y@spam.example\r\nSubject: caf\xe9 latin\r\n', 'latin1'));
    // A long header block cut by the head read in the middle of a character is still UTF-8.
    await send(srv, Buffer.from(`From: z@spam.example\r\nSubject: été long\r\nX-Pad: ${'é'.repeat(20_000)}\r\n`, 'utf8'));

    const idx = new CorpusIndex();
    await idx.setRoots([srv.store]);
    expect(idx.size).toBe(3);
    expect(idx.query({}).items.map((i) => i.subject).sort()).toEqual(['café latin', 'Offre spéciale ünïcode ✓', 'été long'].sort());
    expect(idx.query({ subject: 'spéciale' }).total).toBe(1);
    expect(idx.query({ subject: 'ÉTÉ'.toLowerCase() }).total).toBe(1);
  });
});
