/**
 * `expect:` on a source (src/lateness/ compiles and tracks it): which products (a radar, a bulletin header) must keep arriving, each
 * with its cadence and grace. A rule is keyed by a glob (one product) or by the named groups of
 * a pattern (one product per distinct value, the same named-group syntax as `volumes.pattern`).
 */
import { z } from 'zod';
import { durationSchema } from '../util/duration.js';
import { namedGroupsOf } from '../volumes/key-pattern.js';

export const expectRuleSchema = z
  .strictObject({
    glob: z.string().min(1).optional().describe('One product: the files matching this glob (remote path).'),
    pattern: z
      .string()
      .min(1)
      .optional()
      .describe(
        'One product per value of its named groups, e.g. radar/(?<radar>[A-Z]+)/ (matched on the remote path).',
      ),
    product: z
      .string()
      .min(1)
      .optional()
      .describe('The product name: a glob rule\'s name (default the glob); for a pattern, a template like "{radar}".'),
    products: z
      .array(z.string().min(1))
      .default([])
      .describe('Pattern rules: products expected from the start, late even if never seen.'),
    every: durationSchema().describe('A new file of each product is expected this often.'),
    grace: durationSchema().default(0).describe('Extra time past the cadence before the product is late.'),
  })
  .superRefine((r, ctx) => {
    if ((r.glob === undefined) === (r.pattern === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'give either `glob` or `pattern`, not both or neither' });
      return;
    }
    if (r.pattern === undefined) {
      if (r.products.length > 0)
        ctx.addIssue({
          code: 'custom',
          path: ['products'],
          message: 'products is for pattern rules; a glob is one product',
        });
      return;
    }
    try {
      new RegExp(r.pattern);
    } catch (err) {
      ctx.addIssue({
        code: 'custom',
        path: ['pattern'],
        message: `not a regular expression (${(err as Error).message}); escape it for YAML`,
      });
      return;
    }
    const groups = namedGroupsOf(r.pattern);
    if (groups.length === 0)
      ctx.addIssue({
        code: 'custom',
        path: ['pattern'],
        message: 'the pattern needs a named group naming the product, e.g. (?<radar>[A-Z]+)',
      });
    for (const name of (r.product ?? '').matchAll(/\{([^}]*)\}/g)) {
      if (!groups.includes(name[1] ?? ''))
        ctx.addIssue({
          code: 'custom',
          path: ['product'],
          message: `{${name[1]}} is not a named group of the pattern; add (?<${name[1]}>...)`,
        });
    }
  });

export const expectSchema = z.array(expectRuleSchema);

export type ExpectRuleOutput = z.output<typeof expectRuleSchema>;
