// The `fakemx` command line as a function (commander): run the daemon, validate a config, query
// DNS lists, import a FakeSMTP app.config, report on a corpus, print the config reference.
// cli.ts runs it for the process; tests run it in-process where the process proves nothing more.
// Exit codes follow sysexits: 0 ok, 64 usage error (any subcommand), 78 config error,
// 69 cannot start, 70 internal error; a few commands add their own (README, "Command line").

import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import type { LoadedConfig } from './config/load.js';
import { initCommand, PROFILES, type InitProfile } from './commands/init.js';
import { addStateCommand } from './commands/state.js';
import { parseProvider } from './dnsbl/provider.js';
import { queryName } from './dnsbl/query.js';
import { escapeText } from './util/escape.js';
import { parseSince } from './util/since.js';
import { EX_CONFIG, EX_SOFTWARE, EX_USAGE } from './util/sysexits.js';

// The daemon, the subcommands and the config loader (convict, node:tls) are imported when a
// command runs: every invocation, a usage error or --version too (and every test that spawns
// one), would otherwise pay for loading all of them (~0.4 s; the config loader alone ~60 ms).

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

/** Where a command writes; the process's stdout and stderr in cli.ts. */
export interface CliIo {
  stdout(s: string): void;
  stderr(s: string): void;
  /** After `run` has stopped the daemon: end the process even if a stray handle lingers. */
  leave?(): void;
}

/** Ends a command with this exit code (a config error: 78), whatever called it. */
class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/** `<ip>` of dnsbl: what the lookup can reverse (IPv4 or IPv6), else a usage error. */
function ipArgument(value: string): string {
  if (queryName(value, 'x') === null) throw new InvalidArgumentError(`"${escapeText(value)}" is not an IPv4 or IPv6 address.`);
  return value;
}

/** --rbl/--rwl entries, checked by the lookup's own parser; repeated values accumulate. */
function providerArgument(value: string, previous: string[] | undefined): string[] {
  try {
    parseProvider(value);
  } catch (e) {
    throw new InvalidArgumentError(escapeText((e as Error).message));
  }
  return [...(previous ?? []), value];
}

function topArg(value: string): string {
  if (!/^\d{1,4}$/.test(value) || Number(value) < 1 || Number(value) > 1000) throw new InvalidArgumentError('must be a whole number from 1 to 1000.');
  return value;
}

function sinceArg(value: string): string {
  if (parseSince(value) === null) throw new InvalidArgumentError('not a date (YYYY-MM-DD or ISO 8601 time).');
  return value;
}

/** Runs one `fakemx` command line (the words after the program name); resolves with its exit code. */
export async function runCommand(argv: readonly string[], io: CliIo): Promise<number> {
  let code = 0;
  const out = (s: string) => io.stdout(s.endsWith('\n') ? s : s + '\n');
  const err = (s: string) => io.stderr(s.endsWith('\n') ? s : s + '\n');

  /** Loads a config for a subcommand; a ConfigError ends the command with 78. */
  async function configOrExit(file: string | undefined): Promise<LoadedConfig> {
    const { ConfigError, loadConfig } = await import('./config/load.js');
    try {
      const loaded = loadConfig(file ? { file } : {});
      for (const w of loaded.warnings) err(`fakemx: warning: ${escapeText(w)}`);
      return loaded;
    } catch (e) {
      if (e instanceof ConfigError) {
        // The file's own text (a key, a value, the path) may hold control characters: shown escaped, on one line.
        err(`fakemx: error: config: ${escapeText(e.message)}`);
        throw new Exit(EX_CONFIG);
      }
      throw e;
    }
  }

  const program = new Command();
  program
    .name('fakemx')
    .description('Fake MX / anti-spam SMTP daemon: MX sandwich, bot trap, spam corpus, test receiver')
    .version(pkg.version, '-V, --version')
    .showHelpAfterError();

  /**
   * Commander would print its message and exit 1 itself; instead it throws a CommanderError,
   * which the catch at the bottom turns into 64 (0 for --help/--version). Set on the program
   * before the subcommands are added, so each inherits it, and again on each below.
   */
  function usageErrorsExit64(cmd: Command): void {
    cmd.exitOverride().configureOutput({
      writeOut: (s) => io.stdout(s),
      writeErr: (s) => io.stderr(s),
      outputError: (s, write) => write(`fakemx: ${s}`),
    });
  }
  usageErrorsExit64(program);

  const configOpt = () => new Option('-c, --config <file>', 'config file (JSON)').env('FAKEMX_CONFIG');

  program
    .command('run')
    .description('run the daemon in the foreground')
    .addOption(configOpt())
    .action(async (o: { config?: string }) => {
      const { runDaemon } = await import('./daemon.js');
      code = await runDaemon(o.config ? { configPath: o.config } : {});
      io.leave?.();
    });

  const checkConfig = program
    .command('check-config')
    .description('validate the config and print the effective values (exit 0, 78 invalid, 64 --get of an unknown key)')
    .addOption(configOpt())
    .option('--changed', 'print only the values that differ from the defaults, as key = JSON lines (postconf -n)')
    .addOption(new Option('--get <key>', 'print one value by its dotted key (a string as it is, anything else as JSON)').conflicts('changed'))
    .action(async (o: { config?: string; changed?: boolean; get?: string }) => {
      const loaded = await configOrExit(o.config);
      const [{ changedText, configValue, valueText }, { redacted }] = await Promise.all([import('./config/changed.js'), import('./config/load.js')]);
      if (o.get !== undefined) {
        const v = configValue(loaded.config, o.get);
        if (v === undefined) checkConfig.error(`error: unknown key "${escapeText(o.get)}" (fakemx config-doc lists every key)`, { exitCode: EX_USAGE, code: 'fakemx.unknownKey' });
        out(valueText(v));
        return;
      }
      if (o.changed) {
        const text = changedText(loaded.config);
        if (text) out(text);
      } else out(JSON.stringify(redacted(loaded.config), null, 2));
      err(`fakemx: ${escapeText(loaded.file ?? '(defaults)')}: ok`);
    });

  const dnsbl = program
    .command('dnsbl')
    .description('look a client address up in the configured DNS lists (exit 0 not listed, 1 listed, 2 lookup error, 64 usage or no list to ask, 78 config error)')
    .argument('<ip>', 'client IPv4 or IPv6 address', ipArgument)
    .addOption(configOpt())
    .option('--rbl <entry...>', 'block-list entries zone[=filter][*weight] (instead of the config\'s)', providerArgument)
    .option('--rwl <entry...>', 'allow-list entries (instead of the config\'s)', providerArgument)
    .action(async (ip: string, o: { config?: string; rbl?: string[]; rwl?: string[] }) => {
      const loaded = await configOrExit(o.config);
      const cfg = { ...loaded.config, ...(o.rbl ? { rblProviders: o.rbl } : {}), ...(o.rwl ? { rwlProviders: o.rwl } : {}) };
      // Nothing to ask is a mistake in the invocation, not a lookup error (2) or "not listed" (0).
      if (cfg.rblProviders.length + cfg.rwlProviders.length === 0) {
        dnsbl.error('error: no DNS lists to ask: give --rbl/--rwl, or a --config with rblProviders or rwlProviders', { exitCode: EX_USAGE, code: 'fakemx.noLists' });
      }
      const { dnsblCommand } = await import('./commands/dnsbl.js');
      code = await dnsblCommand(ip, cfg, out);
    });

  program
    .command('import-appconfig')
    .description("convert FakeSMTP's app.config (XML appSettings) to a fakemx JSON config")
    .argument('<app.config>', 'FakeSMTP app.config file')
    .option('-o, --out <file>', 'write the JSON here instead of stdout (exit 73 if it exists)')
    .option('-f, --force', 'overwrite the --out file if it exists')
    .action(async (file: string, o: { out?: string; force?: boolean }) => {
      const { importAppConfigCommand } = await import('./commands/import-appconfig.js');
      code = await importAppConfigCommand(file, o.out, out, err, o.force === true);
    });

  program
    .command('report')
    .description('summarise a corpus directory (counts by day, client, HELO, sender domain, verdict)')
    .addOption(configOpt())
    .option('-s, --store <dir>', 'corpus directory (default: storePath of the config)')
    .option('-d, --dir <dir>', 'same as --store')
    // Checked here as well as in buildReport, so a bad value is a usage error with the help after it.
    .addOption(new Option('--since <date>', 'only messages received at or after this ISO date').argParser(sinceArg))
    .addOption(new Option('--top <n>', 'rows per table').default('10').argParser(topArg))
    .option('--json', 'print JSON instead of text')
    .action(async (o: { config?: string; store?: string; dir?: string; since?: string; top: string; json?: boolean }) => {
      const dir = o.store ?? o.dir ?? (await configOrExit(o.config)).config.storePath;
      const { reportCommand } = await import('./commands/report.js');
      code = await reportCommand({ dir, ...(o.since ? { since: o.since } : {}), top: Number(o.top), json: o.json === true }, out, err);
    });

  addStateCommand(program, { config: async (f) => (await configOrExit(f)).config, configOption: configOpt, out, err, usage: usageErrorsExit64, exit: (c) => (code = c) });

  program
    .command('init')
    .description('write a commented config and its list files for a profile, ready to edit (exit 73 if one exists or cannot be written)')
    .addOption(new Option('-p, --profile <profile>', 'fake-mx (MX sandwich, stores nothing), corpus (collect spam) or sink (test receiver)').choices(PROFILES).default('fake-mx'))
    .option('-d, --dir <dir>', 'directory to write fakemx.json and the list files into', '.')
    .option('-f, --force', 'overwrite files that exist')
    .action(async (o: { profile: InitProfile; dir: string; force?: boolean }) => {
      code = (await initCommand({ profile: o.profile, dir: o.dir, force: o.force === true }, out, err)).code;
    });

  program
    .command('config-doc')
    .description('print the config reference table (Markdown), generated from the schema')
    .action(async () => {
      const { configTable } = await import('./config/doc.js');
      out(configTable());
    });

  for (const cmd of program.commands) usageErrorsExit64(cmd);

  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (e) {
    // Commander has already printed its message (or the help, or the version).
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : EX_USAGE;
    if (e instanceof Exit) return e.code;
    err(`fakemx: error: ${e instanceof Error ? e.message : String(e)}`);
    return EX_SOFTWARE;
  }
}
