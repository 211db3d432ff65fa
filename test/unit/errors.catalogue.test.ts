/**
 * docs/errors.md and the code stay in step (as fastify's errors test keeps its error reference
 * honest): every error code raised in `src/` or a shipped plugin has a row in the catalogue, and
 * every row names a code that still exists, with the class the code raises it with.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CATALOGUE = 'docs/errors.md';

/** Core codes, and the codes of the shipped plugins (`<PLUGIN>_<WHAT>`). */
const CODE = /(['"])((?:POLLER|BUFR|ARCHIVE|EXEC|FORWARD|RADAR_VOLUME)_[A-Z0-9_]+)\1/g;

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) out.push(...tsFiles(rel));
    // Tests name codes to assert on them; they raise none.
    else if (e.name.endsWith('.ts') && !/\.test(-d)?\.ts$/.test(e.name)) out.push(rel);
  }
  return out;
}

/** Code → the first place it appears, for the failure message. */
function codesInSource(): Map<string, string> {
  const found = new Map<string, string>();
  for (const file of [...tsFiles('src'), ...tsFiles('plugins')]) {
    const text = readFileSync(path.join(ROOT, file), 'utf8');
    for (const m of text.matchAll(CODE)) {
      // `process.env['POLLER_CONFIG']`: an environment variable, not an error code.
      if (/env\[\s*$/.test(text.slice(Math.max(0, m.index - 12), m.index))) continue;
      const code = m[2] as string;
      if (!found.has(code)) {
        const line = text.slice(0, m.index).split('\n').length;
        found.set(code, `${file}:${line}`);
      }
    }
  }
  return found;
}

/** Code → the error classes constructed with it (`new PermanentError('CODE', ...)`). */
function classesInSource(): Map<string, Set<string>> {
  const found = new Map<string, Set<string>>();
  for (const file of [...tsFiles('src'), ...tsFiles('plugins')]) {
    const text = readFileSync(path.join(ROOT, file), 'utf8');
    for (const m of text.matchAll(/new (\w+Error)\(\s*['"]([A-Z][A-Z0-9_]+)['"]/g)) {
      const code = m[2] as string;
      found.set(code, (found.get(code) ?? new Set()).add(m[1] as string));
    }
  }
  return found;
}

/** Rows of the catalogue: a table line whose first cell is a code in backticks; then its class cell. */
function catalogueRows(): Array<{ code: string; classCell: string }> {
  const text = readFileSync(path.join(ROOT, CATALOGUE), 'utf8');
  return [...text.matchAll(/^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|([^|]*)\|/gm)].map((m) => ({
    code: m[1] as string,
    classCell: m[2] as string,
  }));
}

describe(CATALOGUE, () => {
  const inSource = codesInSource();
  const rows = catalogueRows();
  const documented = rows.map((r) => r.code);

  it('is read: codes are found on both sides', () => {
    expect(inSource.has('POLLER_CONFIG_INVALID')).toBe(true);
    expect(inSource.has('EXEC_EXIT_NONZERO')).toBe(true);
    expect(inSource.has('POLLER_CONFIG')).toBe(false);
    expect(documented).toContain('POLLER_FTP_LOGIN_REJECTED');
  });

  it('lists every code the code raises', () => {
    const missing = [...inSource]
      .filter(([code]) => !documented.includes(code))
      .map(([code, where]) => `${code} (raised at ${where})`);
    expect(missing, `add a row for each to ${CATALOGUE}`).toEqual([]);
  });

  it('lists no code the code no longer raises', () => {
    const stale = documented.filter((code) => !inSource.has(code));
    expect(stale, `remove these rows from ${CATALOGUE}, or restore the code`).toEqual([]);
  });

  it('gives each code the class the code raises it with', () => {
    const classes = classesInSource();
    const wrong = rows.flatMap(({ code, classCell }) =>
      [...(classes.get(code) ?? [])]
        .filter((cls) => !classCell.includes(`\`${cls}\``))
        .map((cls) => `${code}: raised as ${cls}, documented as ${classCell.trim()}`),
    );
    expect(wrong).toEqual([]);
  });

  it('lists each code once', () => {
    const twice = documented.filter((code, i) => documented.indexOf(code) !== i);
    expect(twice).toEqual([]);
  });
});
