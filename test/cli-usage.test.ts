// Every usage error of every `fakemx` subcommand exits 64 (EX_USAGE, never 1, which dnsbl
// means as "listed"), with the reason on stderr and nothing on stdout. The table runs the
// command line in this process (src/program.ts, what dist/cli.js runs); a few cases also run
// as child processes, proving the process exits with the code the command returns.
import { describe, expect, it } from 'vitest';
import { runCommand } from '../src/program.js';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { CLI, runCli, type CliResult } from './helpers/daemon.js';

/** One command line in this process, its output kept apart from the test's. */
async function run(args: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await runCommand(args, { stdout: (s) => void (stdout += s), stderr: (s) => void (stderr += s) });
  return { code, stdout, stderr };
}

describe.concurrent('usage errors exit 64 (EX_USAGE), with the reason on stderr and nothing on stdout', () => {
  const SUBCOMMANDS = ['run', 'check-config', 'dnsbl', 'import-appconfig', 'report', 'config-doc', 'state', 'init'];
  const cases: [name: string, args: string[], reason: RegExp][] = [
    ['no command', [], /Usage: fakemx/],
    ['unknown command', ['nosuch'], /unknown command 'nosuch'/],
    ['unknown program option', ['--bogus'], /unknown option '--bogus'/],
    ['help for an unknown command', ['help', 'nosuch'], /Usage: fakemx/],
    // The same mistake in every subcommand (the list is checked against --help below).
    ...SUBCOMMANDS.map((c): [string, string[], RegExp] => [`${c}: unknown option`, [c, '--no-such-option', ...(c === 'dnsbl' ? ['192.0.2.1'] : c === 'import-appconfig' ? ['x.config'] : [])], /unknown option '--no-such-option'/]),
    ['run: extra argument', ['run', 'extra'], /too many arguments for 'run'/],
    ['check-config: --config without a file', ['check-config', '--config'], /argument missing/],
    ['dnsbl: no address', ['dnsbl'], /missing required argument 'ip'/],
    ['dnsbl: not an address', ['dnsbl', 'nope', '--rbl', 'bl.test'], /"nope" is not an IPv4 or IPv6 address/],
    ['dnsbl: two addresses', ['dnsbl', '192.0.2.1', '192.0.2.2', '--rbl', 'bl.test'], /too many arguments/],
    ['dnsbl: bad --rbl entry', ['dnsbl', '192.0.2.1', '--rbl', 'bl.test=127.0.0'], /--rbl .* is invalid.*four octets/],
    ['dnsbl: bad --rwl entry', ['dnsbl', '192.0.2.1', '--rwl', 'wl.test*x'], /--rwl .* is invalid.*bad weight/],
    ['dnsbl: no lists to ask', ['dnsbl', '192.0.2.1', '--config', 'config/fakemx.json'], /no DNS lists to ask/],
    ['import-appconfig: no file', ['import-appconfig'], /missing required argument 'app.config'/],
    // The reason, then the help (README: every usage error).
    ['report: bad --top', ['report', '--store', '.', '--top', 'x'], /'--top <n>' argument 'x' is invalid\. must be a whole number from 1 to 1000\.\n\nUsage: fakemx report/],
    ['report: --top 0', ['report', '--store', '.', '--top', '0'], /'--top <n>' argument '0' is invalid[\s\S]*Usage: fakemx report/],
    ['report: bad --since', ['report', '--store', '.', '--since', 'yesterday'], /'--since <date>' argument 'yesterday' is invalid\. not a date[\s\S]*Usage: fakemx report/],
    ['report: extra argument', ['report', 'extra'], /too many arguments for 'report'/],
    ['config-doc: extra argument', ['config-doc', 'extra'], /too many arguments for 'config-doc'/],
    ['init: unknown profile', ['init', '--profile', 'relay'], /argument 'relay' is invalid/],
    ['check-config: unknown key', ['check-config', '--get', 'nope'], /unknown key "nope"/],
    ['check-config: --get and --changed together', ['check-config', '--changed', '--get', 'listenPort'], /option '--get <key>' cannot be used with option '--changed'/],
    ['state: no such action', ['state', 'add', 'nope', '192.0.2.1'], /must be allow, deny or trap/],
    ['state: not an address', ['state', 'list', '--ip', 'nope'], /"nope" is not an IP address or CIDR network/],
    ['state: a network to trap', ['state', 'add', 'trap', '192.0.2.0/24'], /trap takes one address, not a network\n\nUsage: fakemx state add/],
    ['state: a network to deny', ['state', 'add', 'deny', '203.0.113.0/24'], /deny takes one address, not a network\n\nUsage: fakemx state add/],
    ['state: del of no such kind', ['state', 'del', 'nope', '192.0.2.1'], /<what> must be allow, deny, trap or key\n\nUsage: fakemx state del/],
    ['state: del of not an address', ['state', 'del', 'allow', 'zzz'], /"zzz" is not an IP address or CIDR network\n\nUsage: fakemx state del/],
  ];
  it.each(cases)('%s', async (_n, args, reason) => {
    const r = await run(args);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(reason);
    expect(r.stdout).toBe('');
  });

  // The process: a parse error, a check in an action and one of `state`'s, through dist/cli.js
  // (cli.test.ts runs the package bin). Child processes, concurrent, so the spawns overlap.
  const spawned = new Set(['unknown command', 'dnsbl: no lists to ask', 'state: a network to trap']);
  it.each(cases.filter(([n]) => spawned.has(n)))('%s, as a process', async (_n, args, reason) => {
    const r = await runCli(args);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(reason);
    expect(r.stdout).toBe('');
  });

  // `fakemx ... 2>&1 | head -1`: the reader leaves after the reason; the help after it meets a
  // closed pipe (EPIPE on stderr), and the code must still be 64, not 1 from an unhandled error.
  it.each(cases.filter(([n]) => spawned.has(n)))('%s, stderr closed after the first line: still 64', async (_n, args) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr.once('data', () => child.stderr.destroy());
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(64);
  });

  it('the table covers every subcommand --help lists', async () => {
    const help = (await run(['--help'])).stdout;
    const listed = [...help.split('Commands:')[1]!.matchAll(/^ {2}([a-z-]+)/gm)].map((m) => m[1]).filter((c) => c !== 'help');
    expect(listed.sort()).toEqual([...SUBCOMMANDS].sort());
  });
});

