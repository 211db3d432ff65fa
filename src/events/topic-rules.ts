/**
 * Topic by rule: a source's `wnm.topics` rules choose the WIS2 topic of each notification (SYNOP
 * bulletins on .../synop, radar volumes on .../weather-radar), the first rule that matches wins;
 * without a match the sink's topic (or the default) applies. A rule matches by globs on the
 * remote path (a volume's key for volume notifications), by media type, and by file or volume.
 */
import type { SourceConfig, WnmTopicRule } from '../config/load.js';
import { compileGlobs } from '../util/glob.js';
import { mediaTypeOf } from './media-type.js';

export interface TopicSubject {
  /** The remote path, or the volume key. */
  readonly path: string;
  /** The file (a volume: its first member) whose media type counts. */
  readonly mediaPath: string;
  readonly volume: boolean;
}

const compiled = new WeakMap<WnmTopicRule, (p: string) => boolean>();

function globsOf(rule: WnmTopicRule): (p: string) => boolean {
  let m = compiled.get(rule);
  if (!m) {
    m = rule.match ? compileGlobs(rule.match) : () => true;
    compiled.set(rule, m);
  }
  return m;
}

export function ruleTopic(src: SourceConfig | undefined, subject: TopicSubject): string | undefined {
  for (const rule of src?.wnm?.topics ?? []) {
    if (rule.volumes !== undefined && rule.volumes !== subject.volume) continue;
    if (rule.mediaType !== undefined && rule.mediaType !== (src?.wnm?.mediaType ?? mediaTypeOf(subject.mediaPath)))
      continue;
    if (!globsOf(rule)(subject.path)) continue;
    return rule.topic;
  }
  return undefined;
}
