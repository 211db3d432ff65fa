/** Small statistics and reporting helpers for benchmarks. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Spread as (max - min) / median, in percent. */
export function spreadPct(xs: readonly number[]): number {
  const med = median(xs);
  return med === 0 ? 0 : ((Math.max(...xs) - Math.min(...xs)) / med) * 100;
}

export function fmt(n: number, digits = 2): string {
  return n.toFixed(digits);
}

export async function writeResult(repoRoot: string, name: string, data: unknown): Promise<string> {
  const dir = path.join(repoRoot, 'bench', 'results');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${name}-${new Date().toISOString().slice(0, 10)}.json`);
  await writeFile(file, `${JSON.stringify(data, null, 2)}\n`);
  return file;
}

export function printTable(headers: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
  console.log(line(headers));
  for (const r of rows) console.log(line(r));
}
