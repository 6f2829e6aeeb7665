// Waiting for a store's temporaries to go. An aborted message removes its temporary
// asynchronously (open, then unlink, on libuv's pool), and a disk busy with other tests'
// fsyncs can hold those two metadata operations for seconds (a 2 s bound failed CI once).

/** Poll `list` (file paths) until none is a temporary, at most `limitMs`; the ones left. */
export async function noTemporaries(list: () => string[], limitMs = 10_000): Promise<string[]> {
  const tmps = () => list().filter((f) => f.includes('.tmp-'));
  for (const end = Date.now() + limitMs; tmps().length > 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
  return tmps();
}
