// A count with its noun in the right number, for every line a person reads: "1 message",
// "2 messages", "0 messages" ("1 entry"/"3 entries" with the plural given).

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
