// Exit codes of the `fakemx` command, from sysexits(3), in one place so the CLI, the daemon
// and each subcommand agree (the README's "Command line" section lists which uses which).

export const EX_USAGE = 64;
export const EX_DATAERR = 65;
export const EX_NOINPUT = 66;
export const EX_UNAVAILABLE = 69;
export const EX_SOFTWARE = 70;
export const EX_CANTCREAT = 73;
export const EX_CONFIG = 78;
