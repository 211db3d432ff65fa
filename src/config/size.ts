import { z } from 'zod';

/** Memory sizes in config files: `512MiB`, `1GiB`, `1.5GB`, or a plain number of MiB. */
const UNIT_MIB: Record<string, number> = { MiB: 1, MB: 1, GiB: 1024, GB: 1024 };
const SIZE_RE = /^\s*(\d+(?:\.\d+)?)\s*(MiB|MB|GiB|GB)\s*$/;

/** Parse a memory size to MiB; undefined when the text is not a size. */
export function parseSizeMib(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? Math.round(value) : undefined;
  const m = SIZE_RE.exec(value);
  if (!m) return undefined;
  return Math.round(Number(m[1]) * (UNIT_MIB[m[2] as string] as number));
}

/** zod schema of a memory size: text or a number of MiB in, MiB out; at least `minMib`. */
export function sizeMibSchema(description: string, minMib: number) {
  return z
    .union([z.string(), z.number()])
    .transform((v, ctx) => {
      const mib = parseSizeMib(v);
      if (mib === undefined || mib < minMib) {
        ctx.addIssue({
          code: 'custom',
          message: `${JSON.stringify(v)} is not a memory size of at least ${minMib} MiB; write e.g. 512MiB or 1GiB`,
        });
        return z.NEVER;
      }
      return mib;
    })
    .describe(description);
}
