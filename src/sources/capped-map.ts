/**
 * A Map that forgets its least recently set entries past `max`. For per-file hints a source keeps
 * between calls (HTTP validators, S3 ETags): they serve the files in flight and the next
 * listings, so they stay bounded by recent work instead of growing with every file ever seen. A
 * hint forgotten costs a request (a HEAD) or a weaker resume check, never a wrong file.
 */
export class CappedMap<K, V> extends Map<K, V> {
  readonly #max: number;

  constructor(max: number) {
    super();
    this.#max = Math.max(1, max);
  }

  override set(key: K, value: V): this {
    // Set again moves to the newest end: insertion order is recency.
    super.delete(key);
    super.set(key, value);
    if (this.size > this.#max) super.delete(this.keys().next().value as K);
    return this;
  }
}

/** Per-file hints a source keeps: more than the files of a few busy cycles, a few MB at most. */
export const MAX_FILE_HINTS = 16_384;
