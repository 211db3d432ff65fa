/**
 * JSON text of an uncompressed subset, flat and nested, written straight from the decoded items.
 * A satellite message holds tens of thousands of subsets of a hundred values each; building an
 * object per value and handing it to `JSON.stringify` spent most of `poller bufr dump --json` in
 * the garbage collector. Here the part of an entry that only depends on its definition
 * (descriptor, key, name, unit) is made once per definition and reused, and each value adds one
 * number or string. The text is exactly what `JSON.stringify` gives for the object forms in
 * `document.ts` and `toNestedJson` (same keys, same order), so either path reads the same.
 */

import type { DecodedMessage } from '../decoder/index.js';
import { valueAt } from '../decoder/index.js';

type DocItem = DecodedMessage['items'][number][number];
type TreeNode = DecodedMessage['tree'][number][number];

function six(code: number): string {
  return String(code).padStart(6, '0');
}

function valueText(it: DocItem, subset: number): string {
  const v = valueAt(it.vals, subset);
  return typeof v === 'number' ? String(v) : JSON.stringify(v);
}

/** Text that depends only on an item's definition, per definition object, code and kind. */
class PrefixCache {
  private readonly byDef = new WeakMap<object, Map<string, string>>();

  get(it: DocItem, make: (it: DocItem) => string): string {
    let byCode = this.byDef.get(it.def);
    if (!byCode) {
      byCode = new Map();
      this.byDef.set(it.def, byCode);
    }
    const key = `${it.code}:${it.kind}`;
    let text = byCode.get(key);
    if (text === undefined) {
      text = make(it);
      byCode.set(key, text);
    }
    return text;
  }
}

const flatPrefix = (it: DocItem): string =>
  `{"descriptor":"${six(it.code)}","key":${JSON.stringify(it.def.key)},"name":${JSON.stringify(it.def.name)},"unit":${JSON.stringify(it.def.unit)},"value":`;

const nestedPrefix = (it: DocItem): string => `{"descriptor":"${six(it.code)}","key":${JSON.stringify(it.def.key)}`;

/** Writes subsets of one decode; its caches live as long as the writer. */
export class SubsetJsonWriter {
  private readonly flat = new PrefixCache();
  private readonly nested = new PrefixCache();

  /** The flat list of one uncompressed subset: `[{descriptor, key, name, unit, value, bytes?, kind?}, ...]`. */
  flatText(items: readonly DocItem[]): string {
    const out = new Array<string>(items.length);
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      let s = this.flat.get(it, flatPrefix) + (it.bytes ? 'null' : valueText(it, 0));
      if (it.bytes) s += `,"bytes":${it.bytes.length}`;
      if (it.kind !== 'element') s += `,"kind":"${it.kind}"`;
      out[i] = `${s}}`;
    }
    return `[${out.join(',')}]`;
  }

  /** The nested form of one uncompressed subset, as `toNestedJson(msg, s)` stringified. */
  nestedText(items: readonly DocItem[], tree: readonly TreeNode[]): string {
    const parts: string[] = [];
    this.renderNodes(items, tree, parts);
    return parts.join('');
  }

  private renderNodes(items: readonly DocItem[], nodes: readonly TreeNode[], out: string[]): void {
    out.push('[');
    for (let i = 0; i < nodes.length; i++) {
      if (i > 0) out.push(',');
      const n = nodes[i]!;
      if (typeof n === 'number') {
        const it = items[n]!;
        const pre = this.nested.get(it, nestedPrefix);
        if (it.bytes) out.push(`${pre},"bytes":${it.bytes.length}}`);
        else
          out.push(`${pre},"value":${valueText(it, 0)}${it.def.unit ? `,"unit":${JSON.stringify(it.def.unit)}` : ''}}`);
      } else if ('seq' in n) {
        out.push(`{"sequence":"${six(n.seq)}","items":`);
        this.renderNodes(items, n.children, out);
        out.push('}');
      } else {
        out.push(`{"replication":"${six(n.rep)}","repetitions":[`);
        for (let k = 0; k < n.reps.length; k++) {
          if (k > 0) out.push(',');
          this.renderNodes(items, n.reps[k]!, out);
        }
        out.push(']}');
      }
    }
    out.push(']');
  }
}
