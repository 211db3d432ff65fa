/**
 * Module boundaries (STYLE.md "Module boundaries"), checked on the static import graph of `src/`
 * and `plugins/`. Each rule names why it exists; a failure lists every offending import with its
 * file and line, so the fix is to move code, not to widen a rule.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Edge {
  /** Importing file, repo-relative, '/'-separated. */
  from: string;
  /** Imported file, repo-relative; only files inside the repo are kept. */
  to: string;
  line: number;
  /** `import type` / `export type`: erased at compile time, no runtime dependency. */
  typeOnly: boolean;
}

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) out.push(...tsFiles(rel));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

// `import x from '…'`, `import { a, type B } from '…'`, `export { a } from '…'`, `export * from '…'`,
// `import type … from '…'`: no `;` or quote may sit between the keyword and `from`, so a match
// never runs across statements. Side-effect imports and literal dynamic imports are separate.
const STATIC = /^[ \t]*(?:import|export)\s+(type\s+)?[^;'"]*?\bfrom\s*['"]([^'"]+)['"]/gm;
const SIDE_EFFECT = /^[ \t]*import\s*['"]([^'"]+)['"]/gm;
const DYNAMIC = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

function resolveSpecifier(from: string, spec: string): string | undefined {
  if (spec === 'poller/plugin') return 'src/plugins/api.ts';
  if (!spec.startsWith('.')) return undefined; // a package: not part of the graph
  const abs = path.resolve(ROOT, path.dirname(from), spec);
  for (const candidate of [abs.replace(/\.js$/, '.ts'), `${abs}.ts`, path.join(abs, 'index.ts'), abs]) {
    if (existsSync(candidate) && !candidate.endsWith(path.sep)) {
      return path.relative(ROOT, candidate).split(path.sep).join('/');
    }
  }
  return path.relative(ROOT, abs).split(path.sep).join('/');
}

function lineAt(text: string, index: number): number {
  let line = 1;
  for (let i = 0; i < index; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

function importGraph(): Edge[] {
  const edges: Edge[] = [];
  for (const from of [...tsFiles('src'), ...tsFiles('plugins')]) {
    const text = readFileSync(path.join(ROOT, from), 'utf8');
    const add = (spec: string | undefined, index: number, typeOnly: boolean) => {
      const to = spec === undefined ? undefined : resolveSpecifier(from, spec);
      if (to !== undefined) edges.push({ from, to, line: lineAt(text, index), typeOnly });
    };
    for (const m of text.matchAll(STATIC)) add(m[2], m.index, m[1] !== undefined);
    for (const m of text.matchAll(SIDE_EFFECT)) add(m[1], m.index, false);
    for (const m of text.matchAll(DYNAMIC)) add(m[1], m.index, false);
  }
  return edges;
}

const GRAPH = importGraph();

const under = (dir: string) => (file: string) => file.startsWith(`${dir}/`);
const isTest = (file: string) => /\.test(-d)?\.ts$/.test(file);
const show = (edges: readonly Edge[]) =>
  edges.map((e) => `${e.from}:${e.line} imports ${e.to}${e.typeOnly ? ' (type-only)' : ''}`);

function violations(rule: (e: Edge) => boolean): string[] {
  return show(GRAPH.filter(rule));
}

describe('import graph', () => {
  it('is read: known edges are found', () => {
    const has = (from: string, to: string) => GRAPH.some((e) => e.from === from && e.to === to);
    expect(has('src/engine/cycle/fetch.ts', 'src/transfer/landing.ts')).toBe(true);
    expect(has('src/plugins/api.ts', 'src/errors.ts')).toBe(true); // an `export … from`
    expect(GRAPH.some((e) => e.from === 'src/cli/app.ts' && e.typeOnly)).toBe(true);
    expect(GRAPH.length).toBeGreaterThan(100);
  });

  it('nothing imports src/cli/: it is the composition root', () => {
    expect(violations((e) => under('src/cli')(e.to) && !under('src/cli')(e.from))).toEqual([]);
  });

  it('src/sources/ never imports src/ledger/: sources list and download, they keep no state', () => {
    expect(violations((e) => under('src/sources')(e.from) && under('src/ledger')(e.to))).toEqual([]);
  });

  it('src/ledger/ imports from src/sources/ only the contract types of source.ts, type-only', () => {
    // The ledger stores versions of listed entries (RemoteEntry, MtimePrecision) by design; it
    // must not depend on a protocol or on anything that runs.
    expect(
      violations(
        (e) =>
          under('src/ledger')(e.from) &&
          under('src/sources')(e.to) &&
          !(e.typeOnly && e.to === 'src/sources/source.ts'),
      ),
    ).toEqual([]);
  });

  it('src/ledger/ does not import src/engine/', () => {
    expect(violations((e) => under('src/ledger')(e.from) && under('src/engine')(e.to))).toEqual([]);
  });

  it('only src/cli/ imports the SQLite ledger; everyone else uses the Ledger interface', () => {
    expect(
      violations(
        (e) => under('src/ledger/sqlite')(e.to) && !under('src/cli')(e.from) && !under('src/ledger/sqlite')(e.from),
      ),
    ).toEqual([]);
  });

  it('src/plugins/api.ts imports at runtime only src/errors.ts and the duration syntax', () => {
    // Plugin options share the config's duration syntax (`30s`, `5m`): one parser, two users.
    const allowed = new Set(['src/errors.ts', 'src/util/duration.ts']);
    expect(violations((e) => e.from === 'src/plugins/api.ts' && !e.typeOnly && !allowed.has(e.to))).toEqual([]);
  });

  it('shipped plugins import from src/ only src/plugins/api.ts and src/errors.ts', () => {
    const allowed = new Set(['src/plugins/api.ts', 'src/errors.ts']);
    expect(
      violations((e) => under('plugins')(e.from) && !isTest(e.from) && under('src')(e.to) && !allowed.has(e.to)),
    ).toEqual([]);
  });

  it('the core never imports a shipped plugin; cli/ and demo/ may use the bufr library, not a plugin entry', () => {
    // `poller bufr` and the demo feed reuse the BUFR decoder/encoder as a library. Plugins
    // themselves are loaded by the loader at run time, by name, never imported statically.
    const toolsMayUse = (e: Edge) =>
      (under('src/cli')(e.from) || under('src/demo')(e.from)) &&
      under('plugins/bufr')(e.to) &&
      !/^plugins\/[^/]+\/index\.ts$/.test(e.to);
    expect(violations((e) => under('src')(e.from) && under('plugins')(e.to) && !toolsMayUse(e))).toEqual([]);
  });

  it('src/demo/ is reached only from src/cli/', () => {
    expect(
      violations((e) => under('src/demo')(e.to) && !under('src/demo')(e.from) && !under('src/cli')(e.from)),
    ).toEqual([]);
  });
});

/**
 * The top-level area of a file: `src/engine/cycle.ts` → `engine`, `src/errors.ts` → `errors.ts`.
 * Areas are the units a reader holds in mind; their imports must point one way.
 */
function areaOf(file: string): string | undefined {
  const parts = file.split('/');
  return parts[0] === 'src' ? parts[1] : undefined;
}

/** Area → area, each with the imports that make it (type-only ones too: a type cycle is a knot as well). */
function areaGraph(edges: readonly Edge[]): Map<string, Map<string, Edge[]>> {
  const graph = new Map<string, Map<string, Edge[]>>();
  for (const e of edges) {
    const from = areaOf(e.from);
    const to = areaOf(e.to);
    if (from === undefined || to === undefined || from === to) continue;
    const out = graph.get(from) ?? new Map<string, Edge[]>();
    graph.set(from, out);
    out.set(to, [...(out.get(to) ?? []), e]);
  }
  return graph;
}

/** The first cycle found (depth-first, areas in name order), as its areas with the first area repeated last. */
function findCycle(graph: ReadonlyMap<string, ReadonlyMap<string, unknown>>): string[] | undefined {
  const done = new Set<string>();
  const onPath: string[] = [];
  const visit = (node: string): string[] | undefined => {
    const at = onPath.indexOf(node);
    if (at >= 0) return [...onPath.slice(at), node];
    if (done.has(node)) return undefined;
    onPath.push(node);
    for (const next of [...(graph.get(node)?.keys() ?? [])].sort()) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    onPath.pop();
    done.add(node);
    return undefined;
  };
  for (const node of [...graph.keys()].sort()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return undefined;
}

/** A cycle as lines a reader can act on: each step with one import that makes it. */
function describeCycle(cycle: readonly string[], graph: ReadonlyMap<string, ReadonlyMap<string, Edge[]>>): string[] {
  const lines = [cycle.join(' → ')];
  for (let i = 0; i + 1 < cycle.length; i++) {
    const from = cycle[i] as string;
    const to = cycle[i + 1] as string;
    const via = graph.get(from)?.get(to) ?? [];
    lines.push(
      `  ${from} → ${to}: ${show(via.slice(0, 3)).join('; ')}${via.length > 3 ? ` (+${via.length - 3} more)` : ''}`,
    );
  }
  return lines;
}

describe('top-level areas of src/', () => {
  const graph = areaGraph(GRAPH);

  it('the cycle finder finds a cycle and names it (so the DAG check below can fail)', () => {
    const edge = (from: string, to: string): Edge => ({
      from: `src/${from}/x.ts`,
      to: `src/${to}/y.ts`,
      line: 1,
      typeOnly: false,
    });
    const knot = areaGraph([
      edge('config', 'observe'),
      edge('observe', 'ledger'),
      edge('ledger', 'config'),
      edge('cli', 'config'),
    ]);
    const cycle = findCycle(knot);
    expect(cycle).toEqual(['config', 'observe', 'ledger', 'config']);
    expect(describeCycle(cycle as string[], knot)[1]).toBe(
      '  config → observe: src/config/x.ts:1 imports src/observe/y.ts',
    );
    expect(findCycle(areaGraph([edge('cli', 'config'), edge('config', 'util'), edge('cli', 'util')]))).toBeUndefined();
  });

  it('form a DAG: no area reaches itself through its imports', () => {
    // Knows every area (a typo in areaOf would make the graph empty and the check vacuous).
    expect([...graph.keys()]).toEqual(expect.arrayContaining(['cli', 'config', 'engine', 'ledger', 'sources']));
    const cycle = findCycle(graph);
    expect(cycle === undefined ? [] : describeCycle(cycle, graph)).toEqual([]);
  });

  it('src/util/ is a leaf: it imports nothing of src/', () => {
    expect(violations((e) => under('src/util')(e.from) && under('src')(e.to) && !under('src/util')(e.to))).toEqual([]);
  });

  it('src/observe/ (logger, metrics, probes, HTTP) imports only the leaves: it serves every area, so it uses none', () => {
    const leaf = (file: string) => file === 'src/errors.ts' || under('src/util')(file) || under('src/observe')(file);
    expect(violations((e) => under('src/observe')(e.from) && under('src')(e.to) && !leaf(e.to))).toEqual([]);
  });

  it('src/sources/ does not import src/config/: the config is built from what sources declare, not the reverse', () => {
    expect(violations((e) => under('src/sources')(e.from) && under('src/config')(e.to))).toEqual([]);
  });
});
