/**
 * The WIS2 Topic Hierarchy (WMO, github.com/wmo-im/wis2-topic-hierarchy) as a check of the
 * topics poller publishes on. Levels 1 to 7 are short fixed code lists (restated here, as the
 * standard's text gives them); the sub-discipline levels (8 and deeper) are read from a copy of
 * the hierarchy's CSV tree when one is configured (`events.topicHierarchy`): each directory's
 * `index.csv` lists its children (`index-flat.csv`: two levels, e.g. satellite/instrument), a
 * child with a directory of its own is a branch, one without a leaf. `experimental` accepts any
 * levels below it. Conventions (pywis-topics): lower case ASCII, no dots, no empty level.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface TopicNode {
  readonly children: Map<string, TopicNode>;
}

/** Levels 1..7: channel, version, system, centre-id (checked apart), notification type, data policy, discipline. */
const FIXED: ReadonlyArray<{ name: string; values: readonly string[] } | undefined> = [
  { name: 'channel', values: ['origin', 'cache'] },
  { name: 'version', values: ['a'] },
  { name: 'system', values: ['wis2'] },
  undefined,
  { name: 'notification-type', values: ['data', 'metadata'] },
  { name: 'data-policy', values: ['core', 'recommended'] },
  {
    name: 'earth-system-discipline',
    values: ['atmospheric-composition', 'climate', 'cryosphere', 'hydrology', 'ocean', 'space-weather', 'weather'],
  },
];

const LEVEL = /^[a-z0-9_-]+$/;
const PLACEHOLDER = /^\{[A-Za-z]+\}$/;

function firstColumn(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .slice(1)
    .map((l) => l.split(',')[0]?.trim() ?? '')
    .filter((v) => v !== '');
}

function readNode(dir: string): TopicNode {
  const children = new Map<string, TopicNode>();
  const index = path.join(dir, 'index.csv');
  if (existsSync(index))
    for (const name of firstColumn(index)) {
      const sub = path.join(dir, name);
      children.set(name, existsSync(sub) ? readNode(sub) : { children: new Map() });
    }
  const flat = path.join(dir, 'index-flat.csv');
  if (existsSync(flat))
    for (const row of readFileSync(flat, 'utf8').split(/\r?\n/).slice(1)) {
      const [a, b] = row.split(',').map((v) => v.trim());
      if (!a || !b) continue;
      let node = children.get(a);
      if (!node) {
        node = { children: new Map() };
        children.set(a, node);
      }
      node.children.set(b, { children: new Map() });
    }
  return { children };
}

/**
 * The discipline tree under `dir`: a checkout of the hierarchy repository, or its
 * `topic-hierarchy` folder. Undefined when neither is there.
 */
export function loadTopicTree(dir: string): TopicNode | undefined {
  for (const base of [path.join(dir, 'topic-hierarchy'), dir]) {
    const root = path.join(base, 'earth-system-discipline');
    if (!existsSync(path.join(root, 'index.csv'))) continue;
    return readNode(root);
  }
  return undefined;
}

export interface TopicCheckOptions {
  readonly centreId: string;
  /** The discipline tree; without it levels 8 and deeper are checked for their form only. */
  readonly tree?: TopicNode;
}

function children(node: TopicNode): string {
  const names = [...node.children.keys()];
  return names.length > 8 ? `${names.slice(0, 8).join(', ')}, ...` : names.join(', ');
}

/** Checks the levels below the discipline against the tree; one line per mistake. */
function subDisciplineProblems(levels: readonly string[], tree: TopicNode | undefined, discipline: string): string[] {
  let node = tree?.children.get(discipline);
  if (levels.length === 0)
    return [`stops at the discipline "${discipline}"; data topics go deeper${node ? ` (${children(node)})` : ''}`];
  const out: string[] = [];
  for (const [i, level] of levels.entries()) {
    if (level === 'experimental') return out;
    if (PLACEHOLDER.test(level)) {
      out.push(`level ${8 + i} "${level}" is not a level of the hierarchy; put it below "experimental"`);
      return out;
    }
    if (!node) continue;
    const next = node.children.get(level);
    if (!next) {
      out.push(
        `level ${8 + i} "${level}" is not in the hierarchy here; use one of ${children(node)} (or experimental)`,
      );
      return out;
    }
    node = next;
  }
  if (node && node.children.size > 0)
    out.push(`stops at the branch "${levels[levels.length - 1]}"; add one of ${children(node)}`);
  return out;
}

/** Problems of one topic template (`{centreId}` filled in, other placeholders kept); empty when it conforms. */
export function topicProblems(template: string, opts: TopicCheckOptions): string[] {
  const levels = template.split('/').map((l) => (l === '{centreId}' ? opts.centreId : l));
  const out: string[] = [];
  for (const [i, level] of levels.entries()) {
    if (level === '') out.push(`level ${i + 1} is empty`);
    else if (!PLACEHOLDER.test(level) && !LEVEL.test(level))
      out.push(`level ${i + 1} "${level}" must be lower case letters, digits, "-" or "_" (no dots)`);
  }
  if (out.length > 0) return out;
  // Metadata topics end at the notification type (origin/a/wis2/<centre-id>/metadata).
  const least = levels[4] === 'metadata' ? 5 : FIXED.length;
  if (levels.length < least) return [`has ${levels.length} levels; a WIS2 data topic has at least 7`];
  FIXED.slice(0, Math.min(levels.length, FIXED.length)).forEach((f, i) => {
    const level = levels[i] as string;
    if (f === undefined) {
      if (level !== opts.centreId)
        out.push(`level 4 (centre-id) "${level}" is not this centre's id "${opts.centreId}"; use {centreId}`);
    } else if (!f.values.includes(level))
      out.push(`level ${i + 1} (${f.name}) "${level}" is not one of ${f.values.join(', ')}`);
  });
  if (out.length > 0 || levels[4] === 'metadata') return out;
  return subDisciplineProblems(levels.slice(FIXED.length), opts.tree, levels[6] as string);
}

/** A `{source}` or `{dirs}` value made a topic level: lower case, dots and other marks as "-". */
export function topicLevelOf(text: string): string {
  return (
    text
      .toLowerCase()
      .replace(/[^a-z0-9_-]+/g, '-')
      .replace(/^-+|-+$/g, '') || '-'
  );
}
