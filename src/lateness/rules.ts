/**
 * Compiled `expect:` rules and the product a remote path belongs to. Pure: compiled once from the
 * config, then applied to every fetched path.
 */
import { minimatch } from 'minimatch';
import { namedGroupsOf } from '../volumes/key-pattern.js';

/** One `expect:` rule as the config gives it (validated there), durations in milliseconds. */
export interface ExpectRuleInput {
  readonly glob?: string | undefined;
  readonly pattern?: string | undefined;
  readonly product?: string | undefined;
  readonly products: readonly string[];
  readonly every: number;
  readonly grace: number;
}

export interface ExpectRule {
  /** A glob rule's product name; undefined for a pattern rule (its products come from paths). */
  readonly product?: string;
  readonly everyMs: number;
  readonly graceMs: number;
  /** Products expected from the start (pattern rules), late even if never seen. */
  readonly declared: readonly string[];
  /** The product of a path under this rule, or undefined when the path is not one of its files. */
  productOf(remotePath: string): string | undefined;
}

export function compileExpectRule(r: ExpectRuleInput): ExpectRule {
  const timing = { everyMs: r.every, graceMs: r.grace };
  if (r.glob !== undefined) {
    const glob = r.glob;
    const product = r.product ?? glob;
    return {
      ...timing,
      product,
      declared: [product],
      productOf: (p) => (minimatch(p, glob, { dot: false }) ? product : undefined),
    };
  }
  const regex = new RegExp(r.pattern ?? '');
  const groups = namedGroupsOf(r.pattern ?? '');
  const template = r.product;
  return {
    ...timing,
    declared: r.products,
    productOf(p) {
      const g = regex.exec(p)?.groups;
      if (!g) return undefined;
      if (template !== undefined) {
        let missing = false;
        const name = template.replace(/\{([^}]*)\}/g, (_, k: string) => {
          const v = g[k];
          if (v === undefined || v === '') missing = true;
          return v ?? '';
        });
        return missing ? undefined : name;
      }
      const values = groups.map((k) => g[k]).filter((v): v is string => v !== undefined && v !== '');
      return values.length === 0 ? undefined : values.join('/');
    },
  };
}

/** The first rule a path belongs to, with its product; rules are tried in the order written. */
export function matchProduct(
  rules: readonly ExpectRule[],
  remotePath: string,
): { rule: ExpectRule; product: string } | undefined {
  for (const rule of rules) {
    const product = rule.productOf(remotePath);
    if (product !== undefined) return { rule, product };
  }
  return undefined;
}
