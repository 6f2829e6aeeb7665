// Part of `npm run build`: the manual page fakemx(1) at dist/fakemx.1 (package.json "man", so
// `npm install -g` puts it where man(1) finds it), generated from the CLI's own --help output
// (every command and subcommand, found by walking the "Commands:" lists) and from the config
// schema (the same reference as `fakemx config-doc` and the README). Nothing in it is written
// by hand except the section headings and the short texts below.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist/cli.js');
const { leaves, envName } = await import(join(root, 'dist/config/schema.js'));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

// Every help text in this one process: dist/cli.js is imported afresh (a new query string is
// a new module instance) with process.argv set to `<path> --help`, and what it writes to
// stdout is kept. A process per command would cost a second each.
let loads = 0;
async function help(args) {
  const write = process.stdout.write;
  let text = '';
  process.stdout.write = (chunk) => ((text += String(chunk)), true);
  const argv = process.argv;
  const streams = [process.stdout, process.stderr];
  const listeners = streams.map((st) => st.listeners('error'));
  process.argv = [process.execPath, cli, ...args, '--help'];
  try {
    await import(`${pathToFileURL(cli).href}?man=${loads++}`);
    for (let i = 0; i < 20 && !text.includes('\n\n'); i++) await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 10));
  } finally {
    process.stdout.write = write;
    process.argv = argv;
    // Each fresh cli.js adds its stdout and stderr 'error' listeners (EPIPE): keep one process's worth.
    streams.forEach((st, i) => {
      for (const l of st.listeners('error')) if (!listeners[i].includes(l)) st.off('error', l);
    });
  }
  process.exitCode = 0;
  return text;
}

/** Text safe for roff: backslashes, leading dots and quotes, hyphens of options. */
const esc = (s) => s.replace(/\\/g, '\\e').replace(/^([.'])/gm, '\\&$1').replace(/-/g, '\\-');

/** The subcommand names listed under "Commands:" in a help text. */
function commands(text) {
  const i = text.indexOf('\nCommands:\n');
  if (i < 0) return [];
  const names = [];
  for (const line of text.slice(i + 11).split('\n')) {
    const m = /^ {2}([a-z][\w-]*)/.exec(line);
    if (m && m[1] !== 'help') names.push(m[1]);
    else if (line && !line.startsWith(' ')) break;
  }
  return names;
}

const sections = [];
async function walk(path) {
  const text = await help(path);
  if (path.length > 0) sections.push([path.join(' '), text]);
  for (const c of commands(text)) await walk([...path, c]);
}
process.env.COLUMNS = '78';
const top = await help([]);
await walk([]);

const out = [];
out.push(`.TH FAKEMX 1 "" "fakemx ${pkg.version}" "User Commands"`);
out.push('.SH NAME', 'fakemx \\- fake MX and anti\\-spam SMTP daemon: MX sandwich, bot trap, spam corpus, test receiver');
out.push('.SH SYNOPSIS', '.B fakemx', '.I command', '[\\fIoptions\\fR]');
out.push('.SH DESCRIPTION');
out.push('fakemx answers SMTP like a mail exchanger that never delivers: it delays, tarpits and tempfails bots, asks DNS block lists, and stores what it accepts as a corpus (one .eml and one .json record per message under storePath/YYYY\\-MM\\-DD/). One process, one JSON config file (comments allowed).');
out.push('Start with \\fBfakemx init\\fR, check with \\fBfakemx check\\-config \\-\\-changed\\fR, run with \\fBfakemx run \\-c fakemx.json\\fR and try it with \\fBswaks \\-\\-server 127.0.0.1:2525 \\-\\-to user@example.com\\fR.');
out.push('.PP', '.nf', esc(top.trimEnd()), '.fi');
out.push('.SH COMMANDS');
for (const [name, text] of sections) out.push(`.SS "fakemx ${esc(name)}"`, '.nf', esc(text.trimEnd()), '.fi');
out.push('.SH CONFIGURATION');
out.push('The config file is JSON; // and /* */ comments are allowed. Every key can also be set by an environment variable; environment variables win over the file. Keys (default in parentheses):');
for (const [path, leaf] of leaves()) {
  const range = leaf.range ? ` (${leaf.range.min}..${leaf.range.max})` : '';
  out.push('.TP', `.B ${esc(path)}`, `(${esc(JSON.stringify(leaf.default))}; \\fB${esc(envName(path))}\\fR)`, '.br', esc(leaf.doc + range));
}
out.push('.SH EXIT STATUS');
// sysexits(3), per command as in the README's table ("Command line"; test/first-run.test.ts compares).
out.push('0 success; 64 usage error (every command); 70 internal error (a bug). A config error names the file and the key.');
for (const [cmd, codes] of [
  ['run', '0 stopped by SIGTERM/SIGINT, 69 cannot start (e.g. the port is taken), 73 logPath cannot be made or written, 78 config error'],
  ['check-config', '0 valid, 78 invalid (64 for \\-\\-get of an unknown key)'],
  ['init', '0 written, 73 a file exists (nothing written) or cannot be written'],
  ['dnsbl', '0 not listed (or allowed), 1 listed, 2 a lookup failed, 78 config error; 64 also when there is no list to ask'],
  ['import-appconfig', '0, 65 bad XML, 66 unreadable input, 73 cannot write the output'],
  ['report', '0 (an empty store too), 66 store missing or unreadable, 78 config error'],
  ['state', '0, 1 nothing matched (list) or no such entry (del), 69 the store cannot be reached (a local one that does not exist: only add makes it), 78 config error'],
]) out.push('.TP', `.B ${cmd.replace(/-/g, '\\-')}`, codes);
out.push('.SH SIGNALS');
out.push('SIGHUP reloads the config (a moved listener logs where it now listens); SIGTERM and SIGINT stop accepting, let sessions finish for shutdownGrace milliseconds, and exit 0.');
out.push('.SH FILES');
out.push('.TP', '.I ./var/corpus/YYYY\\-MM\\-DD/<id>.eml, <id>.json', 'the corpus (storePath)');
out.push('.SH SEE ALSO', 'swaks(1), postconf(1), the README and docs/deploy.md of the fakemx package.');
writeFileSync(join(root, 'dist/fakemx.1'), out.join('\n') + '\n');
console.error(`man: dist/fakemx.1 (${sections.length} commands, ${leaves().length} config keys)`);
