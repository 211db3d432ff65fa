/** The rows of the volume tables (the same columns in SQLite and PostgreSQL) and their mapping to records. */
import type { EmittedOutput } from '../plugins/api.js';
import type { VolumeMemberRecord, VolumeRecord, VolumeRunRecord, VolumeState } from './volume-ledger.js';

export interface VolumeRow {
  id: number;
  source: string;
  key: string;
  version: number;
  digest: string;
  fields: string;
  state: VolumeState;
  partial: number;
  first_member_ms: number;
  last_member_ms: number;
  closed_ms: number | null;
  done_ms: number | null;
  claimed_by: string | null;
  lease_until_ms: number | null;
  next_retry_ms: number | null;
  error_code: string | null;
  last_error: string | null;
  updated_ms: number;
}

export interface MemberRow {
  volume_id: number;
  member: string;
  file_id: number;
  path: string;
  file_version: string;
  local_path: string;
  size_bytes: number;
  mtime_ms: number;
  landed_ms: number;
  forgotten: number;
}

export interface VolumeRunRow {
  volume_id: number;
  plugin: string;
  state: VolumeRunRecord['state'];
  attempts: number;
  error_code: string | null;
  last_error: string | null;
  duration_ms: number | null;
  next_retry_ms: number | null;
  outputs: string;
  updated_ms: number;
}

export function toMember(r: MemberRow): VolumeMemberRecord {
  return {
    member: r.member,
    fileId: r.file_id,
    path: r.path,
    version: r.file_version,
    localPath: r.local_path,
    sizeBytes: r.size_bytes,
    mtimeMs: r.mtime_ms,
    landedMs: r.landed_ms,
  };
}

export function toVolumeRun(r: VolumeRunRow): VolumeRunRecord {
  return {
    volumeId: r.volume_id,
    plugin: r.plugin,
    state: r.state,
    attempts: r.attempts,
    errorCode: r.error_code,
    lastError: r.last_error,
    durationMs: r.duration_ms,
    nextRetryMs: r.next_retry_ms,
    outputs: parseOutputs(r.outputs),
    updatedMs: r.updated_ms,
  };
}

function parseOutputs(text: string): EmittedOutput[] {
  try {
    return JSON.parse(text) as EmittedOutput[];
  } catch {
    return [];
  }
}

export function toVolumeRecord(row: VolumeRow, members: readonly MemberRow[]): VolumeRecord {
  return {
    id: row.id,
    source: row.source,
    key: row.key,
    version: row.version,
    digest: row.digest,
    fields: JSON.parse(row.fields) as Record<string, string>,
    state: row.state,
    partial: row.partial === 1,
    firstMemberMs: row.first_member_ms,
    lastMemberMs: row.last_member_ms,
    closedMs: row.closed_ms,
    doneMs: row.done_ms,
    claimedBy: row.claimed_by,
    leaseUntilMs: row.lease_until_ms,
    nextRetryMs: row.next_retry_ms,
    errorCode: row.error_code,
    lastError: row.last_error,
    updatedMs: row.updated_ms,
    members: members.map(toMember),
  };
}
