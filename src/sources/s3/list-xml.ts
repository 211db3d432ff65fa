/**
 * ListObjectsV2 and error replies, read with a few regular expressions: the format is flat and
 * fixed, and a full XML parser would be a dependency for five element names. Pure.
 */
import { decodeEntities } from '../text.js';

export interface ListedObject {
  key: string;
  sizeBytes: number;
  mtimeMs: number;
  /** Quoted, as S3 sends it (`"9b2cf535f27731c974343645a3985328"`, or `"...-12"` for multipart). */
  etag?: string;
}

export interface ListObjectsPage {
  objects: ListedObject[];
  /** CommonPrefixes: the "subdirectories" under the delimiter. */
  prefixes: string[];
  truncated: boolean;
  nextToken?: string;
}

function text(block: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(block);
  return m ? decodeEntities(m[1] as string) : undefined;
}

export function parseListObjects(xml: string): ListObjectsPage {
  const objects: ListedObject[] = [];
  for (const m of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
    const block = m[1] as string;
    const key = text(block, 'Key');
    const size = Number(text(block, 'Size'));
    const mtimeMs = Date.parse(text(block, 'LastModified') ?? '');
    if (key === undefined || !Number.isSafeInteger(size) || !Number.isFinite(mtimeMs)) continue;
    const etag = text(block, 'ETag');
    objects.push({ key, sizeBytes: size, mtimeMs, ...(etag !== undefined && { etag }) });
  }
  const prefixes: string[] = [];
  for (const m of xml.matchAll(/<CommonPrefixes>([\s\S]*?)<\/CommonPrefixes>/g)) {
    const p = text(m[1] as string, 'Prefix');
    if (p !== undefined) prefixes.push(p);
  }
  const nextToken = text(xml, 'NextContinuationToken');
  return {
    objects,
    prefixes,
    truncated: text(xml, 'IsTruncated') === 'true',
    ...(nextToken !== undefined && { nextToken }),
  };
}

/** `<Error><Code>NoSuchKey</Code>...` → `NoSuchKey`; undefined when the body is not an S3 error. */
export function xmlErrorCode(xml: string): string | undefined {
  const code = /<Error>[\s\S]*?<Code>([A-Za-z0-9.]{1,64})<\/Code>/.exec(xml);
  return code ? code[1] : undefined;
}
