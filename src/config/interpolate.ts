/**
 * `${VAR}` and `${VAR:-default}` in config string values, resolved after YAML parsing so that a
 * secret with YAML-special characters cannot change the document's structure.
 */
const VAR_RE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

export interface InterpolationResult {
  value: unknown;
  issues: string[];
}

/** With `lenient`, an unset variable becomes '' without an issue (commands that never connect). */
export function interpolateEnv(value: unknown, env: NodeJS.ProcessEnv, lenient = false): InterpolationResult {
  const issues: string[] = [];
  const walk = (v: unknown, path: string): unknown => {
    if (typeof v === 'string') {
      return v.replace(VAR_RE, (_all, name: string, fallback: string | undefined) => {
        const found = env[name];
        if (found !== undefined && found !== '') return found;
        if (fallback !== undefined) return fallback;
        if (lenient) return '';
        issues.push(
          `${path || '(root)'}: environment variable ${name} is not set; export it or use \${${name}:-default}`,
        );
        return '';
      });
    }
    if (Array.isArray(v)) return v.map((item, i) => walk(item, `${path}[${i}]`));
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v)) out[k] = walk(item, path ? `${path}.${k}` : k);
      return out;
    }
    return v;
  };
  return { value: walk(value, ''), issues };
}
