// RFC 5321 conformance table: each named case is a scripted session against a real
// server on 127.0.0.1. A step sends a line (or raw bytes) and checks the reply's code,
// enhanced code and text. Covers sequence, syntax, paths, parameters, limits and DATA.
// Every case also checks what it does not say: after its last step the next reply must be
// the 221 to our QUIT (or, for a case that ends in a close, nothing more arrives), so an
// extra or missing reply anywhere in the session fails it; and the messages it stored are
// exactly those it got a "queued as" for, with exactly the bodies in `stored`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { endCase, RawClient } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { noTemporaries } from '../helpers/temporaries.js';

type Expect = string; // "250", "250 2.1.0", "250 2.1.0 /regex/"
interface Step {
  send?: string;
  raw?: string | Buffer;
  expect?: Expect;
}
interface Case {
  name: string;
  /** Start with EHLO (default) / HELO / nothing after the greeting. */
  start?: 'ehlo' | 'helo' | 'none';
  config?: Record<string, unknown>;
  steps: Step[];
  /** The server closes the connection at the end. */
  closes?: boolean;
  /** The bodies (after dot-unstuffing) of the messages the case stores, in order. */
  stored?: string[];
}

const lists = mkdtempSync(join(tmpdir(), 'fakemx-lists-'));
const domainsFile = join(lists, 'domains');
const mailboxesFile = join(lists, 'mailboxes');
writeFileSync(domainsFile, '# local domains\nexample.com\n\nEXAMPLE.NET\n');
writeFileSync(mailboxesFile, '# mailboxes\nalice@example.com\nBob@Example.com\n');

const env = (from = '<a@example.org>', to = '<b@example.com>'): Step[] => [
  { send: `MAIL FROM:${from}`, expect: '250 2.1.0' },
  { send: `RCPT TO:${to}`, expect: '250 2.1.5' },
];

const cases: Case[] = [
  // ---- greeting and hello (RFC 5321 §4.1.1.1, §4.2) ----
  { name: 'EHLO lists the extensions', steps: [{ send: 'EHLO x.test', expect: '250 /SIZE 2097152\n8BITMIME\nPIPELINING\nENHANCEDSTATUSCODES\nSMTPUTF8/' }] },
  { name: 'EHLO reply names the host first', steps: [{ send: 'EHLO x.test', expect: '250 /^mx\\.test /' }] },
  { name: 'HELO gets a one-line 250', start: 'none', steps: [{ send: 'HELO x.test', expect: '250 /^mx\\.test Hello x\\.test$/' }] },
  { name: 'HELO without domain is 501', start: 'none', steps: [{ send: 'HELO', expect: '501 /HELO needs a domain$/' }] },
  { name: 'EHLO without domain is 501', start: 'none', steps: [{ send: 'EHLO ', expect: '501 /EHLO needs a domain$/' }] },
  { name: 'EHLO with two words is 501', start: 'none', steps: [{ send: 'EHLO a b', expect: '501 /EHLO takes one domain$/' }] },
  { name: 'HELO with two words is 501', start: 'none', steps: [{ send: 'HELO a b', expect: '501 /HELO takes one domain$/' }] },
  { name: 'commands are case-insensitive', start: 'none', steps: [{ send: 'ehlo x.test', expect: '250' }, { send: 'mail from:<a@b.example>', expect: '250 2.1.0' }, { send: 'rcpt to:<c@d.example>', expect: '250 2.1.5' }] },
  { name: 'a second EHLO resets the envelope', steps: [...env(), { send: 'EHLO again.test', expect: '250' }, { send: 'DATA', expect: '503 5.5.1' }] },
  { name: 'HELO after EHLO drops ESMTP parameters', steps: [{ send: 'HELO x.test', expect: '250' }, { send: 'MAIL FROM:<a@b.example> SIZE=10', expect: '555 5.5.4' }] },

  // ---- sequence errors: 503 ----
  { name: 'MAIL before HELO is 503 (no enhanced code yet)', start: 'none', steps: [{ send: 'MAIL FROM:<a@b.example>', expect: '503 /^Error/' }] },
  { name: 'RCPT before MAIL is 503', steps: [{ send: 'RCPT TO:<a@b.example>', expect: '503 5.5.1' }] },
  { name: 'RCPT before HELO is 503', start: 'none', steps: [{ send: 'RCPT TO:<a@b.example>', expect: '503' }] },
  { name: 'nested MAIL is 503', steps: [{ send: 'MAIL FROM:<a@b.example>', expect: '250' }, { send: 'MAIL FROM:<a@b.example>', expect: '503 5.5.1' }] },
  { name: 'DATA before MAIL is 503', steps: [{ send: 'DATA', expect: '503 5.5.1' }] },
  { name: 'DATA without an accepted RCPT is 503', steps: [{ send: 'MAIL FROM:<a@b.example>', expect: '250' }, { send: 'DATA', expect: '503 5.5.1' }] },
  { name: 'RSET clears the transaction', steps: [...env(), { send: 'RSET', expect: '250 2.0.0' }, { send: 'RCPT TO:<x@y.example>', expect: '503 5.5.1' }] },

  // ---- syntax errors: 501 / 555 ----
  { name: 'MAIL without FROM: is 501', steps: [{ send: 'MAIL <a@b.example>', expect: '501 5.5.4' }] },
  { name: 'RCPT without TO: is 501', steps: [{ send: 'MAIL FROM:<>', expect: '250' }, { send: 'RCPT <a@b.example>', expect: '501 5.5.4' }] },
  { name: 'address without angle brackets is 501', steps: [{ send: 'MAIL FROM:a@b.example', expect: '501' }] },
  { name: 'SIZE=abc is 501', steps: [{ send: 'MAIL FROM:<a@b.example> SIZE=abc', expect: '501 5.5.4' }] },
  { name: 'BODY=9BIT is 501', steps: [{ send: 'MAIL FROM:<a@b.example> BODY=9BIT', expect: '501 5.5.4' }] },
  { name: 'BODY=8BITMIME is accepted', steps: [{ send: 'MAIL FROM:<a@b.example> BODY=8BITMIME', expect: '250 2.1.0' }] },
  { name: 'unknown MAIL parameter is 555 5.5.4', steps: [{ send: 'MAIL FROM:<a@b.example> XFOO=1', expect: '555 5.5.4' }] },
  { name: 'unknown RCPT parameter is 555 5.5.4', steps: [{ send: 'MAIL FROM:<a@b.example>', expect: '250' }, { send: 'RCPT TO:<c@d.example> NOTIFY=NEVER', expect: '555 5.5.4' }] },
  { name: 'ESMTP parameters after HELO are 555', start: 'helo', steps: [{ send: 'MAIL FROM:<a@b.example> BODY=8BITMIME', expect: '555 5.5.4' }] },
  { name: 'DATA with an argument is 501', steps: [...env(), { send: 'DATA now', expect: '501 5.5.4' }] },
  { name: 'RSET with an argument is 501', steps: [{ send: 'RSET x', expect: '501 5.5.4' }] },
  { name: 'QUIT with an argument is 501', steps: [{ send: 'QUIT x', expect: '501 5.5.4' }] },
  { name: 'unknown command is 500 5.5.1', steps: [{ send: 'XYZZY', expect: '500 5.5.1' }] },
  { name: 'empty line is 500 5.5.1', steps: [{ send: '', expect: '500 5.5.1' }] },
  { name: '8-bit command line is 500 5.5.1', steps: [{ raw: Buffer.from('NOOP caf\xc3\xa9\r\n', 'latin1'), expect: '500 5.5.1' }] },
  { name: 'bare LF ends a command line', steps: [{ raw: 'NOOP\n', expect: '250 2.0.0' }] },

  // ---- paths (RFC 5321 §4.1.2) ----
  { name: 'null sender <> is accepted', steps: [{ send: 'MAIL FROM:<>', expect: '250 2.1.0' }] },
  { name: 'null recipient <> is refused', steps: [{ send: 'MAIL FROM:<>', expect: '250' }, { send: 'RCPT TO:<>', expect: '553 5.1.3' }] },
  { name: 'quoted local part is accepted', steps: [{ send: 'MAIL FROM:<"john doe"@b.example>', expect: '250' }, { send: 'RCPT TO:<"x@y"@d.example>', expect: '250' }] },
  { name: 'IPv4 and IPv6 address literals', steps: [{ send: 'MAIL FROM:<a@[192.0.2.1]>', expect: '250' }, { send: 'RCPT TO:<b@[IPv6:2001:db8::1]>', expect: '250' }] },
  { name: 'source route accepted and ignored', steps: [{ send: 'MAIL FROM:<@relay.example:a@b.example>', expect: '250' }, { send: 'RCPT TO:<@r1.example,@r2.example:c@d.example>', expect: '250' }] },
  { name: '<@example.com> is 553 5.1.3', steps: [{ send: 'MAIL FROM:<@example.com>', expect: '553 5.1.3' }] },
  { name: '<user@> is 553 5.1.3', steps: [{ send: 'MAIL FROM:<>', expect: '250' }, { send: 'RCPT TO:<user@>', expect: '553 5.1.3' }] },
  { name: 'RCPT TO:<postmaster> without domain is accepted', steps: [{ send: 'MAIL FROM:<>', expect: '250' }, { send: 'RCPT TO:<PostMaster>', expect: '250 2.1.5' }] },
  { name: 'SMTPUTF8 address with SMTPUTF8', steps: [{ raw: Buffer.from('MAIL FROM:<用户@例子.广告> SMTPUTF8\r\n'), expect: '250 2.1.0' }, { raw: Buffer.from('RCPT TO:<δοκιμή@παράδειγμα.δοκιμή>\r\n'), expect: '250 2.1.5' }] },
  // RFC 6531 §3.5: a sender that needs SMTPUTF8 without it is 550 X.6.7, a recipient 553 X.6.7.
  { name: 'UTF-8 address without SMTPUTF8 is 550 5.6.7', steps: [{ raw: Buffer.from('MAIL FROM:<用户@例子.广告>\r\n'), expect: '550 5.6.7 /Non-ASCII address needs the SMTPUTF8 parameter/' }, { send: 'MAIL FROM:<a@b.example>', expect: '250' }] },
  { name: 'UTF-8 domain only, without SMTPUTF8, is 550 5.6.7', steps: [{ raw: Buffer.from('MAIL FROM:<a@bücher.example> BODY=8BITMIME\r\n'), expect: '550 5.6.7' }] },
  { name: 'UTF-8 recipient in a transaction without SMTPUTF8 is 553 5.6.7', steps: [{ send: 'MAIL FROM:<a@b.example>', expect: '250' }, { raw: Buffer.from('RCPT TO:<δοκιμή@παράδειγμα.δοκιμή>\r\n'), expect: '553 5.6.7' }, { send: 'RCPT TO:<c@d.example>', expect: '250 2.1.5' }] },
  { name: 'invalid UTF-8 in MAIL is 500 even with SMTPUTF8', steps: [{ raw: Buffer.from('MAIL FROM:<\xff@x.example> SMTPUTF8\r\n', 'latin1'), expect: '500 5.5.1' }, { send: 'MAIL FROM:<a@b.example>', expect: '250' }] },
  { name: 'UTF-8 outside MAIL and RCPT is 500', steps: [{ raw: Buffer.from('VRFY δοκιμή\r\n'), expect: '500 5.5.1' }] },

  // ---- SIZE (RFC 1870) ----
  { name: 'SIZE over maxDataSize is 552 5.3.4 at MAIL', config: { maxDataSize: 10000 }, steps: [{ send: 'MAIL FROM:<a@b.example> SIZE=10001', expect: '552 5.3.4' }] },
  { name: 'SIZE at maxDataSize is accepted', config: { maxDataSize: 10000 }, steps: [{ send: 'MAIL FROM:<a@b.example> SIZE=10000', expect: '250' }] },

  // ---- other commands ----
  { name: 'VRFY with an argument is 252 2.5.2', steps: [{ send: 'VRFY root', expect: '252 2.5.2' }] },
  { name: 'VRFY without argument is 501', steps: [{ send: 'VRFY', expect: '501' }] },
  { name: 'EXPN is 502 5.5.1', steps: [{ send: 'EXPN list', expect: '502 5.5.1' }] },
  { name: 'EXPN without argument is 501', steps: [{ send: 'EXPN', expect: '501 5.5.4' }, { send: 'EXPN   ', expect: '501 5.5.4' }] },
  { name: 'VRFY with only spaces is 501', steps: [{ send: 'VRFY   ', expect: '501 5.5.4' }] },
  { name: 'trailing spaces after DATA, RSET and QUIT are not arguments', steps: [...env(), { send: 'RSET ', expect: '250 2.0.0' }, ...env(), { send: 'DATA  ', expect: '354' }, { raw: '.\r\n', expect: '250 2.0.0' }, { send: 'QUIT ', expect: '221 2.0.0' }], closes: true, stored: [''] },
  { name: 'STARTTLS with an argument is 501, with trailing spaces 502 (no certificate)', steps: [{ send: 'STARTTLS x', expect: '501 5.5.4' }, { send: 'STARTTLS  ', expect: '502 5.5.1' }] },
  { name: 'MAIL without the FROM: keyword at the start is 501', steps: [{ send: 'MAIL XFROM:<a@b.example>', expect: '501 5.5.4' }, { send: 'MAIL FROM <a@b.example>', expect: '501 5.5.4' }] },
  { name: 'RCPT without the TO: keyword at the start is 501', steps: [{ send: 'MAIL FROM:<>', expect: '250' }, { send: 'RCPT XTO:<a@b.example>', expect: '501 5.5.4' }, { send: 'RCPT TO <a@b.example>', expect: '501 5.5.4' }] },
  { name: 'HELP is 214', steps: [{ send: 'HELP', expect: '214' }, { send: 'HELP MAIL', expect: '214' }] },
  { name: 'NOOP with and without argument is 250', steps: [{ send: 'NOOP', expect: '250 2.0.0' }, { send: 'NOOP hello there', expect: '250 2.0.0' }] },
  { name: 'QUIT is 221 2.0.0 and closes', steps: [{ send: 'QUIT', expect: '221 2.0.0' }], closes: true },
  { name: 'STARTTLS without a certificate is 502', steps: [{ send: 'STARTTLS', expect: '502 5.5.1' }] },

  // ---- recipients (localDomains / localMailboxes) ----
  { name: 'localDomains: other domain is relaying denied', config: { localDomains: domainsFile }, steps: [{ send: 'MAIL FROM:<a@example.com>', expect: '250' }, { send: 'RCPT TO:<x@other.example>', expect: '550 5.7.1 /relaying denied/' }] },
  { name: 'localDomains: recipient domain decides, not the sender', config: { localDomains: domainsFile }, steps: [{ send: 'MAIL FROM:<a@other.example>', expect: '250' }, { send: 'RCPT TO:<x@Example.NET>', expect: '250' }] },
  { name: 'localMailboxes: unknown user is 550 5.1.1', config: { localMailboxes: mailboxesFile }, steps: [{ send: 'MAIL FROM:<>', expect: '250' }, { send: 'RCPT TO:<carol@example.com>', expect: '550 5.1.1 /unknown user/' }, { send: 'RCPT TO:<BOB@example.com>', expect: '250' }] },
  { name: 'localMailboxes: <postmaster> is always accepted', config: { localMailboxes: mailboxesFile }, steps: [{ send: 'MAIL FROM:<>', expect: '250' }, { send: 'RCPT TO:<postmaster>', expect: '250' }] },

  // ---- limits (FakeSMTP) ----
  { name: 'maxSmtpErrors: one error too many is 421 4.7.0 and close', config: { maxSmtpErrors: 2 }, steps: [{ send: 'BAD1', expect: '500' }, { send: 'BAD2', expect: '500' }, { send: 'BAD3', expect: '421 4.7.0 /errors/' }], closes: true },
  { name: 'maxSmtpNoop: one NOOP too many is 421 4.7.0', config: { maxSmtpNoop: 2 }, steps: [{ send: 'NOOP', expect: '250' }, { send: 'NOOP', expect: '250' }, { send: 'NOOP', expect: '421 4.7.0 /NOOP/' }], closes: true },
  { name: 'maxSmtpVrfy counts VRFY and EXPN', config: { maxSmtpVrfy: 2, maxSmtpErrors: 10 }, steps: [{ send: 'VRFY a', expect: '252' }, { send: 'EXPN b', expect: '502' }, { send: 'VRFY c', expect: '421 4.7.0 /VRFY/' }], closes: true },
  { name: 'maxSmtpRcpt: extra RCPT is 452 4.5.3 and the session goes on', config: { maxSmtpRcpt: 2, maxSmtpErrors: 1 }, steps: [{ send: 'MAIL FROM:<>', expect: '250' }, { send: 'RCPT TO:<a@b.example>', expect: '250' }, { send: 'RCPT TO:<c@b.example>', expect: '250' }, { send: 'RCPT TO:<d@b.example>', expect: '452 4.5.3' }, { send: 'RCPT TO:<e@b.example>', expect: '452 4.5.3' }, { send: 'NOOP', expect: '250' }] },
  { name: 'maxMessages: one message too many is 421 4.7.0', config: { maxMessages: 1, storeData: false }, steps: [...env(), { send: 'DATA', expect: '354' }, { raw: 'x\r\n.\r\n', expect: '250' }, { send: 'MAIL FROM:<>', expect: '421 4.7.0 /messages/' }], closes: true },
  { name: 'line over 512 octets is 500 5.5.2 and the session goes on', steps: [{ send: 'NOOP ' + 'x'.repeat(600), expect: '500 5.5.2' }, { send: 'NOOP', expect: '250' }] },
  { name: 'line of exactly 512 octets is fine', steps: [{ send: 'NOOP ' + 'x'.repeat(505), expect: '250' }] },

  // ---- DATA ----
  { name: 'DATA is 354 then 250 2.0.0 queued as', steps: [...env(), { send: 'DATA', expect: '354' }, { raw: 'Subject: t\r\n\r\nhello\r\n.\r\n', expect: '250 2.0.0 /queued as [0-9a-z]{17}/' }], stored: ['Subject: t\r\n\r\nhello\r\n'] },
  { name: 'empty body is a valid message', steps: [...env(), { send: 'DATA', expect: '354' }, { raw: '.\r\n', expect: '250 2.0.0' }], stored: [''] },
  // SMTP smuggling: only <CRLF>.<CRLF> ends DATA. Each variant carries a command after the
  // fake terminator: a reader that stopped there would answer it (an extra reply before the
  // 221) and store a shorter body.
  { name: 'LF.LF does not end DATA', steps: [...env(), { send: 'DATA', expect: '354' }, { raw: 'a\n.\nMAIL FROM:<x@y.example>\r\n' }, { raw: '.\r\n', expect: '250 2.0.0' }], stored: ['a\n.\nMAIL FROM:<x@y.example>\r\n'] },
  { name: 'LF.CRLF does not end DATA', steps: [...env(), { send: 'DATA', expect: '354' }, { raw: 'a\n.\r\nRSET\r\n' }, { raw: '.\r\n', expect: '250 2.0.0' }], stored: ['a\n.\r\nRSET\r\n'] },
  { name: 'CR.CR does not end DATA', steps: [...env(), { send: 'DATA', expect: '354' }, { raw: 'a\r.\rRSET\r\n' }, { raw: '.\r\n', expect: '250 2.0.0' }], stored: ['a\r.\rRSET\r\n'] },
  // §4.5.2: the leading dot of ".<LF>RSET" is stuffing (deleted); the bare LF stays.
  { name: 'CRLF.LF does not end DATA', steps: [...env(), { send: 'DATA', expect: '354' }, { raw: 'a\r\n.\nRSET\r\n' }, { raw: '.\r\n', expect: '250 2.0.0' }], stored: ['a\r\n\nRSET\r\n'] },
  { name: 'dot-unstuffing, lone CR and LF are stored as they came', steps: [...env(), { send: 'DATA', expect: '354' }, { raw: '..lead\r\n..\r\nlone\rcr\r\nlone\nlf\r\nmid.dot\r\n.\r\n', expect: '250 2.0.0' }], stored: ['.lead\r\n.\r\nlone\rcr\r\nlone\nlf\r\nmid.dot\r\n'] },
  { name: 'body over maxDataSize is read to the end, then 552 5.3.4', config: { maxDataSize: 2048 }, steps: [...env(), { send: 'DATA', expect: '354' }, { raw: 'x'.repeat(3000) + '\r\n.\r\n', expect: '552 5.3.4' }, { send: 'NOOP', expect: '250' }], stored: [] },
  { name: 'a body of exactly maxDataSize is stored', config: { maxDataSize: 2048 }, steps: [...env(), { send: 'DATA', expect: '354' }, { raw: 'y'.repeat(2046) + '\r\n.\r\n', expect: '250 2.0.0' }], stored: ['y'.repeat(2046) + '\r\n'] },
  { name: 'a new transaction after a message', steps: [...env(), { send: 'DATA', expect: '354' }, { raw: 'x\r\n.\r\n', expect: '250' }, ...env('<>', '<c@d.example>')], stored: ['x\r\n'] },
  { name: 'tempfail at DATA when storing is off', config: { doTempFail: true, storeData: false }, steps: [...env(), { send: 'DATA', expect: '421 4.3.2 /Service temporarily unavailable/' }], closes: true },
  // A fake MX never answers 5xx for size: the limit is not advertised (Postfix would bounce a
  // bigger message itself) and a message over it is deferred like any other.
  { name: 'a tempfail profile advertises SIZE without its limit', config: { doTempFail: true, storeData: false }, start: 'none', steps: [{ send: 'EHLO x.test', expect: '250 /^mx\\.test Hello x\\.test\nSIZE\n8BITMIME\n/' }] },
  { name: 'a tempfail profile defers SIZE over maxDataSize at MAIL with 421 4.3.2', config: { doTempFail: true, storeData: false, maxDataSize: 10000 }, steps: [{ send: 'MAIL FROM:<a@b.example> SIZE=10001', expect: '421 4.3.2' }], closes: true },
  { name: 'a storing tempfail profile defers a body over maxDataSize with 421 4.3.2', config: { doTempFail: true, storeData: true, maxDataSize: 2048 }, steps: [...env(), { send: 'DATA', expect: '354' }, { raw: 'x'.repeat(3000) + '\r\n.\r\n', expect: '421 4.3.2' }], closes: true, stored: [] },
  { name: 'a storing tempfail profile defers a BDAT chunk over maxDataSize with 421 4.3.2', config: { doTempFail: true, storeData: true, maxDataSize: 2048 }, steps: [...env(), { raw: 'BDAT 3000\r\n' + 'x'.repeat(3000), expect: '421 4.3.2' }], closes: true, stored: [] },

  // ---- pipelining (RFC 2920) ----
  { name: 'a pipelined batch is answered in order', steps: [{ raw: 'MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nRCPT TO:<bad>\r\nRCPT TO:<e@d.example>\r\nDATA\r\n' }, { expect: '250 2.1.0' }, { expect: '250 2.1.5' }, { expect: '553 5.1.3' }, { expect: '250 2.1.5' }, { expect: '354' }, { raw: 'x\r\n.\r\nQUIT\r\n', expect: '250' }, { expect: '221' }], closes: true, stored: ['x\r\n'] },

  // RFC 2920 §3.1: EHLO, HELO, DATA, VRFY, EXPN, NOOP, QUIT and TURN end a group: a client
  // must wait for their reply. Anything sent behind them in the same write is early talk
  // (PIPELINING; earlyTalkAction drop by default: 554 and close, the command unanswered).
  ...['HELO x.test', 'EHLO x.test', 'VRFY u', 'EXPN l', 'NOOP', 'TURN', 'QUIT'].map((cmd): Case => (
    { name: `a command pipelined behind ${cmd.split(' ')[0]} is early talk`, steps: [{ raw: `${cmd}\r\nNOOP\r\n`, expect: '554 5.5.1 /protocol error/' }], closes: true })),
  { name: 'message text pipelined behind DATA is early talk', steps: [...env(), { raw: 'DATA\r\nSubject: x\r\n', expect: '554 5.5.1' }], closes: true },
  // ...the others may be followed at once.
  ...['RSET', 'HELP', 'MAIL FROM:<a@b.example>'].map((cmd): Case => (
    { name: `commands pipelined behind ${cmd.split(' ')[0]} are answered`, steps: [{ raw: `${cmd}\r\nRSET\r\nNOOP\r\n` }, { expect: cmd === 'HELP' ? '214' : '250' }, { expect: '250 2.0.0' }, { expect: '250 2.0.0' }] })),
  { name: 'commands pipelined behind RCPT are answered', steps: [{ send: 'MAIL FROM:<a@b.example>', expect: '250' }, { raw: 'RCPT TO:<c@d.example>\r\nRCPT TO:<e@d.example>\r\nNOOP\r\n' }, { expect: '250 2.1.5' }, { expect: '250 2.1.5' }, { expect: '250 2.0.0' }] },
  // Without EHLO (or with PIPELINING not advertised) no command may be pipelined at all.
  { name: 'after HELO, any pipelined command is early talk', start: 'helo', steps: [{ raw: 'RSET\r\nNOOP\r\n', expect: '554 5.5.1' }], closes: true },
  { name: 'advertisePipelining false: any pipelined command is early talk', config: { advertisePipelining: false }, steps: [{ raw: 'RSET\r\nNOOP\r\n', expect: '554 5.5.1' }], closes: true },
  { name: 'advertisePipelining false: EHLO does not list PIPELINING', config: { advertisePipelining: false }, start: 'none', steps: [{ send: 'EHLO x.test', expect: '250 /^mx\\.test Hello x\\.test\nSIZE 2097152\n8BITMIME\nENHANCEDSTATUSCODES/' }] },
  { name: 'earlyTalkAction ignore: a pipelined command behind NOOP is answered', config: { earlyTalkAction: 'ignore' }, steps: [{ raw: 'NOOP\r\nRSET\r\n' }, { expect: '250 2.0.0' }, { expect: '250 2.0.0' }] },

  // ---- non-SMTP clients ----
  { name: 'HTTP GET as the first line is 554 and close', start: 'none', steps: [{ send: 'GET / HTTP/1.1', expect: '554 /not HTTP/' }], closes: true },
  { name: 'HTTP CONNECT as the first line is 554 and close', start: 'none', steps: [{ send: 'CONNECT example.com:443 HTTP/1.1', expect: '554' }], closes: true },
  ...['POST / HTTP/1.1', 'HEAD / HTTP/1.0', 'PUT /x HTTP/1.1', 'OPTIONS * HTTP/1.1', 'DELETE /x HTTP/1.1'].map((line): Case => (
    { name: `HTTP ${line.split(' ')[0]} as the first line is 554 and close`, start: 'none', steps: [{ send: line, expect: '554 /not HTTP/' }], closes: true })),
  { name: 'an HTTP line after the first command is just an unknown command', steps: [{ send: 'GET / HTTP/1.1', expect: '500 5.5.1' }] },
  { name: 'GET without a path is not taken for HTTP', start: 'none', steps: [{ send: 'GET', expect: '500' }] },
  { name: 'TLS ClientHello on a plain port is 554 and close', start: 'none', steps: [{ raw: Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00]), expect: '554' }], closes: true },
  { name: 'the first two octets of a ClientHello are enough', start: 'none', steps: [{ raw: Buffer.from([0x16, 0x03]), expect: '554' }], closes: true },
  { name: '0x16 not followed by a TLS version is just a bad command', start: 'none', steps: [{ raw: Buffer.from('\x16A\r\n', 'latin1'), expect: '500' }] },
  { name: 'a ClientHello after the first command is not taken for TLS', start: 'ehlo', steps: [{ raw: Buffer.from([0x16, 0x03, 0x01, 0x0d, 0x0a]), expect: '500 5.5.1' }] },
];

/** Files (base names) in the store that were not in `before`, once no temporary is left (the day's record journal aside). */
async function settledFiles(srv: TestServer, before: Set<string>): Promise<string[]> {
  const added = () => srv.files().filter((f) => !before.has(f) && !f.endsWith('/.journal'));
  await noTemporaries(added);
  return added().map((f) => f.slice(f.lastIndexOf('/') + 1)).sort();
}

describe('RFC 5321 conformance', () => {
  const servers = new Map<string, TestServer>();
  const get = async (config: Record<string, unknown> = {}) => {
    const key = JSON.stringify(config);
    let s = servers.get(key);
    if (!s) servers.set(key, (s = await startServer(config)));
    return s;
  };
  beforeAll(async () => {
    await get();
  });
  afterAll(async () => {
    for (const s of servers.values()) await s.close();
  });

  for (const c of cases) {
    it(c.name, async () => {
      const srv = await get(c.config);
      const before = new Set(srv.files());
      const ids: string[] = [];
      const cl = await RawClient.connect(srv.port);
      try {
        const greet = await cl.reply();
        expect(greet.code).toBe(220);
        expect(greet.text).toMatch(/^mx\.test ESMTP/);
        if ((c.start ?? 'ehlo') === 'ehlo') expect((await cl.cmd('EHLO client.test')).code).toBe(250);
        if (c.start === 'helo') expect((await cl.cmd('HELO client.test')).code).toBe(250);
        for (const step of c.steps) {
          if (step.send !== undefined) cl.send(step.send + '\r\n');
          if (step.raw !== undefined) cl.send(step.raw);
          if (!step.expect) continue;
          const r = await cl.reply();
          const m = /^(\d{3})(?: (\d\.\d{1,3}\.\d{1,3}))?(?: \/(.*)\/)?$/s.exec(step.expect);
          if (!m) throw new Error(`bad expectation ${step.expect}`);
          expect(r.code, `${step.send ?? '(raw)'} -> ${r.raw}`).toBe(Number(m[1]));
          if (m[2]) expect(r.enhanced, r.raw).toBe(m[2]);
          if (m[3]) expect(r.text, r.raw).toMatch(new RegExp(m[3]));
          const id = /queued as ([0-9a-z]+)/.exec(r.text)?.[1];
          if (id) ids.push(id);
        }
        await endCase(cl, c.closes === true);
      } finally {
        cl.close();
      }
      // What the case stored: exactly the messages it was told were queued, with these bodies.
      const added = await settledFiles(srv, before);
      expect(added, 'files the case added to the store').toEqual(ids.flatMap((id) => [`${id}.eml`, `${id}.json`]).sort());
      if (c.stored) {
        const byId = new Map(srv.messages().map((msg) => [msg.meta.id, msg]));
        expect(ids.map((id) => byId.get(id)!.eml.subarray(byId.get(id)!.meta.sizes.headers).toString('latin1'))).toEqual(c.stored);
      }
    });
  }
});
