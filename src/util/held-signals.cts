// Signals that reach `fakemx run` while it is still loading (the ES module graph, the config)
// are held here and handed to the daemon once it can act on them: without a handler a SIGHUP
// in that time would end the process (Node's default), a SIGTERM would skip the clean stop.
// CommonJS so that dist/fakemx.cjs installs it before it loads anything else.

const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

let held: string[] | null = null;
const hold = (sig: string): void => void held?.push(sig);

/** Whether argv names the `run` command: the first word that is not an option. */
export function runsDaemon(argv: readonly string[]): boolean {
  return argv.find((a) => !a.startsWith('-')) === 'run';
}

/** Start holding SIGTERM, SIGINT and SIGHUP (once; later calls do nothing). */
export function holdSignals(): void {
  if (held) return;
  held = [];
  for (const s of SIGNALS) process.on(s, hold);
}

/** Stop holding; the signals held so far, in the order they came (none if nothing held them). */
export function releaseSignals(): string[] {
  if (!held) return [];
  for (const s of SIGNALS) process.off(s, hold);
  const out = held;
  held = null;
  return out;
}
