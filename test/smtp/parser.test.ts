// Parser: RFC 5321 §4.1.2 paths and ESMTP parameters, table-driven.
import { describe, expect, it } from 'vitest';
import { isDomainOrLiteral, parseMailParams, parsePathArg, splitCommand } from '../../src/smtp/parser.js';

describe('splitCommand', () => {
  it('upper-cases the verb and keeps args', () => {
    expect(splitCommand('mail FROM:<a@b>')).toEqual({ verb: 'MAIL', args: 'FROM:<a@b>' });
    expect(splitCommand('quit')).toEqual({ verb: 'QUIT', args: '' });
  });
});

const paths: { name: string; arg: string; ok: boolean; address?: string; code?: string; params?: string; rcpt?: boolean }[] = [
  { name: 'plain', arg: '<user@example.com>', ok: true, address: 'user@example.com' },
  { name: 'space after colon (lenient)', arg: ' <user@example.com>', ok: true, address: 'user@example.com' },
  { name: 'null path', arg: '<>', ok: true, address: '' },
  { name: 'quoted local part', arg: '<"john doe"@example.com>', ok: true, address: '"john doe"@example.com' },
  { name: 'quoted with escaped quote', arg: '<"a\\"b"@example.com>', ok: true, address: '"a\\"b"@example.com' },
  { name: 'quoted with @ inside', arg: '<"a@b"@example.com>', ok: true, address: '"a@b"@example.com' },
  { name: 'IPv4 literal', arg: '<user@[192.0.2.1]>', ok: true, address: 'user@[192.0.2.1]' },
  { name: 'IPv6 literal', arg: '<user@[IPv6:2001:db8::1]>', ok: true, address: 'user@[IPv6:2001:db8::1]' },
  { name: 'bad IPv4 literal', arg: '<user@[300.1.1.1]>', ok: false, code: 'address' },
  { name: 'source route ignored', arg: '<@relay.example,@b.example:user@example.com>', ok: true, address: 'user@example.com' },
  { name: 'bad source route', arg: '<@:user@example.com>', ok: false, code: 'address' },
  { name: 'route without mailbox', arg: '<@example.com>', ok: false, code: 'address' },
  { name: 'empty domain', arg: '<user@>', ok: false, code: 'address' },
  { name: 'no at', arg: '<user>', ok: false, code: 'address' },
  { name: 'no brackets', arg: 'user@example.com', ok: false, code: 'syntax' },
  { name: 'unclosed', arg: '<user@example.com', ok: false, code: 'syntax' },
  { name: 'junk after', arg: '<a@b.c>x', ok: false, code: 'syntax' },
  { name: 'params kept', arg: '<a@b.c> SIZE=10 BODY=8BITMIME', ok: true, address: 'a@b.c', params: 'SIZE=10 BODY=8BITMIME' },
  { name: 'double dot local', arg: '<a..b@example.com>', ok: false, code: 'address' },
  { name: 'hyphen edge domain', arg: '<a@-example.com>', ok: false, code: 'address' },
  { name: 'utf8 mailbox', arg: '<用户@例子.广告>', ok: true, address: '用户@例子.广告' },
  { name: 'postmaster without domain (RCPT)', arg: '<Postmaster>', ok: true, address: 'Postmaster', rcpt: true },
  { name: 'local part over 64', arg: `<${'a'.repeat(65)}@example.com>`, ok: false, code: 'address' },
  { name: 'path over 256', arg: `<a@${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.${'e'.repeat(60)}.${'f'.repeat(20)}.com>`, ok: false, code: 'address' },
];

describe('parsePathArg', () => {
  for (const c of paths) {
    it(c.name, () => {
      const r = parsePathArg(c.arg, { allowNull: !c.rcpt, allowPostmaster: c.rcpt === true });
      expect(r.ok).toBe(c.ok);
      if (r.ok) {
        expect(r.value.address.address).toBe(c.address);
        if (c.params !== undefined) expect(r.value.params).toBe(c.params);
      } else {
        expect(r.code).toBe(c.code);
      }
    });
  }
  it('null path refused for RCPT', () => {
    expect(parsePathArg('<>', { allowNull: false, allowPostmaster: true }).ok).toBe(false);
  });
});

const params: { name: string; p: string; ok: boolean; code?: string; size?: number; body?: string; utf8?: boolean }[] = [
  { name: 'none', p: '', ok: true },
  { name: 'SIZE', p: 'SIZE=1000', ok: true, size: 1000 },
  { name: 'size lower case', p: 'size=5', ok: true, size: 5 },
  { name: 'SIZE=abc', p: 'SIZE=abc', ok: false, code: 'syntax' },
  { name: 'SIZE without value', p: 'SIZE', ok: false, code: 'syntax' },
  { name: 'BODY=8BITMIME', p: 'BODY=8BITMIME', ok: true, body: '8BITMIME' },
  { name: 'BODY=7bit', p: 'BODY=7bit', ok: true, body: '7BIT' },
  { name: 'BODY=9BIT', p: 'BODY=9BIT', ok: false, code: 'syntax' },
  { name: 'SMTPUTF8', p: 'SMTPUTF8', ok: true, utf8: true },
  { name: 'SMTPUTF8=x', p: 'SMTPUTF8=x', ok: false, code: 'syntax' },
  { name: 'unknown keyword', p: 'FOO=bar', ok: false, code: 'param' },
  { name: 'duplicate', p: 'SIZE=1 SIZE=2', ok: false, code: 'syntax' },
];

describe('parseMailParams', () => {
  for (const c of params) {
    it(c.name, () => {
      const r = parseMailParams(c.p);
      expect(r.ok).toBe(c.ok);
      if (r.ok) {
        expect(r.value.size).toBe(c.size);
        expect(r.value.body).toBe(c.body);
        expect(r.value.smtputf8).toBe(c.utf8 === true);
      } else expect(r.code).toBe(c.code);
    });
  }
});

describe('isDomainOrLiteral', () => {
  it.each([
    ['example.com', true], ['a', true], ['[127.0.0.1]', true], ['[IPv6:::1]', true],
    ['ex_ample.com', false], ['', false], ['a..b', false], ['[x]', false],
  ])('%s -> %s', (d, ok) => expect(isDomainOrLiteral(d)).toBe(ok));
});
