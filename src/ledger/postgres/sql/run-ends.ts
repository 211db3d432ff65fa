/** The arrays of a batch of plugin run ends (file or volume runs), for one `unnest` statement. */
import { runEndValues } from '../../core/verdict.js';
import type { PluginOutcome } from '../../records.js';

/**
 * `[id[], plugin[], state[], code[], error[], duration[], retry[], outputs[], uncounted[]]`, the
 * values of `core/verdict.ts`'s `runEndValues`, one entry per outcome; undefined when there is none.
 */
export function runEndArrays(
  results: readonly { readonly id: number; readonly outcomes: readonly PluginOutcome[] }[],
  nowMs: number,
): unknown[][] | undefined {
  const ends = results.flatMap((r) =>
    r.outcomes.map((o) => ({ id: r.id, plugin: o.plugin, ...runEndValues(o, nowMs) })),
  );
  if (ends.length === 0) return undefined;
  return [
    ends.map((e) => e.id),
    ends.map((e) => e.plugin),
    ends.map((e) => e.state),
    ends.map((e) => e.code),
    ends.map((e) => e.error),
    ends.map((e) => e.duration),
    ends.map((e) => e.retry),
    ends.map((e) => e.outputs),
    ends.map((e) => e.uncounted),
  ];
}

/** The `unnest` of those arrays as `u(id, plugin, state, code, error, duration, retry, outputs, uncounted)`, from `$2`. */
export const RUN_ENDS_UNNEST = `unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[],
  $8::bigint[], $9::text[], $10::int[]) AS u(id, plugin, state, code, error, duration, retry, outputs, uncounted)`;
