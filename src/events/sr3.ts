/**
 * MetPX Sarracenia v03 notification messages (`format: sr3-v03`), for sites whose consumers run
 * sr3 subscribers: `pubTime`, `baseUrl` + `relPath`, `identity` (checksum), `size`, `mtime`.
 */
import type { EventFact } from '../ledger/ledger.js';

/** sr3's compact timestamp: 20261123T051500.123 (UTC). */
export function sr3Time(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace('Z', '');
}

export interface Sr3Message {
  pubTime: string;
  baseUrl: string;
  relPath: string;
  size: number;
  mtime: string;
  identity?: { method: 'sha512'; value: string };
  id: string;
}

export function buildSr3(id: string, atMs: number, baseUrl: string, relPath: string, fact: EventFact): Sr3Message {
  return {
    pubTime: sr3Time(atMs),
    baseUrl,
    relPath,
    size: fact.sizeBytes,
    mtime: sr3Time(fact.mtimeMs),
    ...(fact.sha512 && { identity: { method: 'sha512' as const, value: fact.sha512 } }),
    id,
  };
}
