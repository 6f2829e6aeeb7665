#!/usr/bin/env node
// The `fakemx` command (commander): run the daemon, validate a config, query DNS lists,
// import a FakeSMTP app.config, report on a corpus, print the config reference.
// Exit codes follow sysexits: 0 ok, 78 config error, 69 cannot start.

import './util/threadpool.js';
import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig, redacted } from './config/load.js';
import { configTable } from './config/doc.js';
import { EX_CONFIG, runDaemon } from './daemon.js';
import { dnsblCommand } from './commands/dnsbl.js';
import { importAppConfigCommand } from './commands/import-appconfig.js';
import { reportCommand } from './commands/report.js';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
const out = (s: string) => process.stdout.write(s.endsWith('\n') ? s : s + '\n');
const err = (s: string) => process.stderr.write(s.endsWith('\n') ? s : s + '\n');

/** Loads a config for a subcommand; a ConfigError ends the process with 78. */
function configOrExit(file: string | undefined) {
  try {
    return loadConfig(file ? { file } : {});
  } catch (e) {
    if (e instanceof ConfigError) {
      err(`fakemx: config error: ${e.message}`);
      process.exit(EX_CONFIG);
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

const configOpt = () => new Option('-c, --config <file>', 'config file (JSON)').env('FAKEMX_CONFIG');

program
  .command('run')
  .description('run the daemon in the foreground')
  .addOption(configOpt())
  .action(async (o: { config?: string }) => {
    process.exitCode = await runDaemon(o.config ? { configPath: o.config } : {});
    // Let stdout drain, then leave even if a stray handle lingers.
    setTimeout(() => process.exit(), 200).unref();
  });

program
  .command('check-config')
  .description('validate the config and print the effective values (exit 0, or 78 on error)')
  .addOption(configOpt())
  .action((o: { config?: string }) => {
    const loaded = configOrExit(o.config);
    out(JSON.stringify(redacted(loaded.config), null, 2));
    err(`fakemx: ${loaded.file ?? '(defaults)'}: ok`);
  });

program
  .command('dnsbl')
  .description('look a client address up in the configured DNS lists (exit 0 not listed, 1 listed, 2 error)')
  .argument('<ip>', 'client IPv4 or IPv6 address')
  .addOption(configOpt())
  .option('--rbl <entry...>', 'block-list entries zone[=filter][*weight] (instead of the config\'s)')
  .option('--rwl <entry...>', 'allow-list entries (instead of the config\'s)')
  .action(async (ip: string, o: { config?: string; rbl?: string[]; rwl?: string[] }) => {
    const loaded = configOrExit(o.config);
    const cfg = { ...loaded.config, ...(o.rbl ? { rblProviders: o.rbl } : {}), ...(o.rwl ? { rwlProviders: o.rwl } : {}) };
    process.exitCode = await dnsblCommand(ip, cfg, out);
  });

program
  .command('import-appconfig')
  .description("convert FakeSMTP's app.config (XML appSettings) to a fakemx JSON config")
  .argument('<app.config>', 'FakeSMTP app.config file')
  .option('-o, --out <file>', 'write the JSON here instead of stdout')
  .action(async (file: string, o: { out?: string }) => {
    process.exitCode = await importAppConfigCommand(file, o.out, out, err);
  });

program
  .command('report')
  .description('summarise a corpus directory (counts by day, client, HELO, sender domain, verdict)')
  .addOption(configOpt())
  .option('-s, --store <dir>', 'corpus directory (default: storePath of the config)')
  .option('-d, --dir <dir>', 'same as --store')
  .option('--since <date>', 'only messages received at or after this ISO date')
  .option('--top <n>', 'rows per table', '10')
  .option('--json', 'print JSON instead of text')
  .action(async (o: { config?: string; store?: string; dir?: string; since?: string; top: string; json?: boolean }) => {
    const dir = o.store ?? o.dir ?? configOrExit(o.config).config.storePath;
    process.exitCode = await reportCommand({ dir, ...(o.since ? { since: o.since } : {}), top: Number(o.top), json: o.json === true }, out, err);
  });

program
  .command('config-doc')
  .description('print the config reference table (Markdown), generated from the schema')
  .action(() => {
    out(configTable());
  });

program.parseAsync(process.argv).catch((e: unknown) => {
  err(`fakemx: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(70);
});
