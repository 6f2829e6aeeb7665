// The console's message view over hostile MIME: the parser is given at most DELIMITERS_MAX part
// delimiters (it runs on the daemon's event loop), and the view says when the rest was left out.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DELIMITERS_MAX, messageView } from '../../src/console/message.js';

const dir = mkdtempSync(join(tmpdir(), 'fakemx-message-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const part = (i: number) => `--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="a${i}.bin"\r\n\r\nx${i}\r\n`;
const multipart = (parts: string) => `Received: from x\r\nSubject: parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n${parts}--b--\r\n`;

async function view(name: string, eml: string) {
  const path = join(dir, `${name}.eml`);
  writeFileSync(path, eml);
  writeFileSync(join(dir, `${name}.json`), JSON.stringify({ id: name }));
  return messageView(path, join(dir, `${name}.json`));
}

describe('messageView part bound', () => {
  const cases: { name: string; eml: string; attachments: number; partsCut: number | undefined }[] = [
    { name: 'three attachments', eml: multipart([0, 1, 2].map(part).join('')), attachments: 3, partsCut: undefined },
    { name: 'exactly DELIMITERS_MAX delimiters', eml: multipart(Array.from({ length: DELIMITERS_MAX - 1 }, (_, i) => part(i)).join('')), attachments: DELIMITERS_MAX - 1, partsCut: undefined },
    // 1.75 MB of empty parts: parsed whole, this took seconds of the event loop and hundreds of MB.
    { name: '250,000 empty parts', eml: multipart('--b\r\n\r\n'.repeat(250_000)), attachments: 0, partsCut: DELIMITERS_MAX },
    { name: 'many attachments', eml: multipart(Array.from({ length: 3000 }, (_, i) => part(i)).join('')), attachments: DELIMITERS_MAX, partsCut: DELIMITERS_MAX },
  ];
  for (const c of cases) {
    it(`${c.name}: ${c.partsCut ? 'parsed up to the bound, and the view says so' : 'parsed whole'}`, async () => {
      const v = await view(c.name.replace(/\W/g, '_'), c.eml);
      expect(v.subject).toBe('parts');
      expect(v.parseError).toBeUndefined();
      expect(v.partsCut).toBe(c.partsCut);
      expect(v.attachmentCount).toBe(c.attachments);
    });
  }
});
