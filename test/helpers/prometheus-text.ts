/**
 * A strict reader of the Prometheus text exposition format (version 0.0.4), enough to check
 * that `/metrics` is well formed and to look series up. Throws on any line it cannot read.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  /** Metric family name → type (`counter`, `gauge`, `histogram`, ...). */
  types: Map<string, string>;
  help: Map<string, string>;
  samples: Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SAMPLE_RE = new RegExp(`^(${NAME})(?:\\{(.*)\\})?\\s+(\\S+)(?:\\s+(-?\\d+))?$`);
const LABEL_RE = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/y;
const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count'];

export function parsePrometheusText(text: string): Exposition {
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  for (const [index, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    const where = `line ${index + 1}: ${line}`;
    if (line.startsWith('#')) {
      const meta = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (meta === null) continue; // plain comment
      const [, kind, name, rest = ''] = meta;
      if (!new RegExp(`^${NAME}$`).test(name ?? '')) throw new Error(`bad metric name, ${where}`);
      if (kind === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest))
          throw new Error(`bad type, ${where}`);
        types.set(name ?? '', rest);
      } else {
        help.set(name ?? '', rest);
      }
      continue;
    }
    const m = SAMPLE_RE.exec(line);
    if (m === null) throw new Error(`unreadable sample, ${where}`);
    const [, name = '', labelText = '', valueText = ''] = m;
    const value = parseValue(valueText);
    if (value === undefined) throw new Error(`bad value, ${where}`);
    samples.push({ name, labels: parseLabels(labelText, where), value });
    if (familyOf(name, types) === undefined) throw new Error(`sample without a TYPE line, ${where}`);
  }
  return { types, help, samples };
}

/** Go's ParseFloat, which Prometheus uses, takes NaN and Inf in any case (prom-client writes `Nan`). */
function parseValue(text: string): number | undefined {
  const lower = text.toLowerCase();
  if (lower === 'nan') return Number.NaN;
  if (lower === '+inf' || lower === 'inf') return Number.POSITIVE_INFINITY;
  if (lower === '-inf') return Number.NEGATIVE_INFINITY;
  const value = Number(text);
  return Number.isNaN(value) || text === '' ? undefined : value;
}

function parseLabels(text: string, where: string): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL_RE.lastIndex = 0;
  while (LABEL_RE.lastIndex < text.length) {
    const m = LABEL_RE.exec(text);
    if (m === null) throw new Error(`bad labels, ${where}`);
    labels[m[1] ?? ''] = (m[2] ?? '').replace(/\\(["\\n])/g, (_s, c: string) => (c === 'n' ? '\n' : c));
  }
  return labels;
}

function familyOf(name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name;
  for (const suffix of HISTOGRAM_SUFFIXES) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      const type = types.get(base);
      if (type === 'histogram' || type === 'summary') return base;
    }
  }
  return undefined;
}

/** The samples named `name` whose labels include every pair of `labels`. */
export function findSamples(exposition: Exposition, name: string, labels: Record<string, string> = {}): Sample[] {
  return exposition.samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
}
