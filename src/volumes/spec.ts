/** A source's volume settings after config parsing: the compiled pattern and the rules. */
import type { CompletenessRules } from './completeness.js';
import { compileKeyPattern, type KeyPattern } from './key-pattern.js';

export interface VolumeSpec {
  readonly pattern: KeyPattern;
  readonly rules: CompletenessRules;
}

/** The `volumes:` block as the schema leaves it (durations already in ms). */
export interface VolumesInput {
  readonly pattern: string;
  readonly member: string;
  readonly groupBy?: readonly string[] | undefined;
  readonly expect: readonly string[];
  readonly minimum?: number | undefined;
  readonly completeAfter?: number | undefined;
  readonly reopenLate: boolean;
}

/** Build the spec; the schema has already rejected a pattern with problems, so this cannot fail. */
export function volumeSpecOf(v: VolumesInput): VolumeSpec {
  const compiled = compileKeyPattern(v.pattern, v.member, v.groupBy);
  if (!compiled.pattern) throw new Error(`volumes.pattern: ${compiled.problems.join('; ')}`);
  return {
    pattern: compiled.pattern,
    rules: {
      expect: v.expect,
      minimum: v.minimum ?? 1,
      completeAfterMs: v.completeAfter,
      reopenLate: v.reopenLate,
    },
  };
}
