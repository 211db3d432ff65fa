/**
 * One outbox event → the message a sink sends: topic, body, content type. Data events
 * (`fetched`; a volume handed on, `volume-complete` / `volume-partial`) are WIS2 Notification
 * Messages (`fetched` also sr3 v03); so is `gone` of a file that had landed (and so was
 * announced): a WNM with a `deletion` link for the same data_id, at a WNM sink. Every other
 * kind is a CloudEvent.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { SinkConfig, SourceConfig } from '../config/load.js';
import type { OutboxEvent } from '../ledger/ledger.js';
import { buildCloudEvent } from './cloudevents.js';
import { dataMessageId } from './message-id.js';
import { buildSr3 } from './sr3.js';
import {
  DEFAULT_DATA_TOPIC,
  DEFAULT_LIFECYCLE_TOPIC,
  DEFAULT_SR3_TOPIC,
  renderTopic,
  type TopicStyle,
} from './topic.js';
import { ruleTopic } from './topic-rules.js';
import type { VolumeArchives, VolumeObject } from './volume-archive.js';
import { encodeVolumeWnm } from './volume-wnm.js';
import { buildWnm, encodeWnm, WNM_MAX_INLINE_BYTES, type WnmInput, type WnmMessage, wnmHref } from './wnm.js';

export interface SinkMessage {
  readonly seq: number;
  /**
   * The message id, the broker's dedupe key (JetStream Nats-Msg-Id, AMQP message-id): the event
   * id for lifecycle events, one per body for data messages (see message-id.ts).
   */
  readonly id: string;
  readonly topic: string;
  readonly body: Buffer;
  readonly contentType: string;
}

/** An event that cannot be sent as it is (over the size limit); it is logged and skipped. */
export interface Unsendable {
  readonly seq: number;
  readonly id: string;
  readonly reason: string;
}

export interface FormatContext {
  readonly centreId: string;
  readonly sink: SinkConfig;
  readonly sources: ReadonlyMap<string, SourceConfig>;
  /** Volume archives in the landing tree (shared by the sinks); without it volumes are not announced. */
  readonly volumes?: VolumeArchives;
}

const STYLE: Record<SinkConfig['type'], TopicStyle> = {
  mqtt: 'slash',
  file: 'slash',
  webhook: 'slash',
  nats: 'dot',
  amqp: 'dot',
};

/** The file's bytes as base64 when they fit inline and still match the recorded hash. */
async function inlineContent(e: OutboxEvent): Promise<string | undefined> {
  const f = e.fact;
  if (!f.localPath || !f.sha512 || Math.ceil(f.sizeBytes / 3) * 4 > WNM_MAX_INLINE_BYTES) return undefined;
  const bytes = await readFile(f.localPath).catch(() => undefined);
  // A plugin may have moved or rewritten it: inline only the bytes the integrity describes.
  if (!bytes || createHash('sha512').update(bytes).digest('base64') !== f.sha512) return undefined;
  return bytes.toString('base64');
}

/** The WIS2 topic of a data notification: the source's first matching rule, else the sink's, else the default. */
function wnmTopic(e: OutboxEvent, ctx: FormatContext): string {
  const volume = e.fact.volume;
  const rule = ruleTopic(ctx.sources.get(e.source), {
    path: e.fact.path,
    mediaPath: volume?.members[0]?.path ?? e.fact.path,
    volume: volume !== undefined,
  });
  const values = { centreId: ctx.centreId, source: e.source, kind: e.kind, path: volume ? '' : e.fact.path };
  return renderTopic(rule ?? ctx.sink.topic ?? DEFAULT_DATA_TOPIC, values, STYLE[ctx.sink.type], true);
}

type Formatted = SinkMessage | Unsendable;

function dataMessage(e: OutboxEvent, ctx: FormatContext, id: string, body: Buffer | undefined): Formatted {
  if (!body) return { seq: e.seq, id, reason: 'WIS2 notification message over 8192 bytes' };
  return { seq: e.seq, id, topic: wnmTopic(e, ctx), body, contentType: 'application/geo+json' };
}

function sr3Message(e: OutboxEvent, ctx: FormatContext, id: string, sourceUrl: string): Formatted {
  const { sink } = ctx;
  const href = wnmHref({ publicBaseUrl: sink.publicBaseUrl, sourceUrl, source: e.source, fact: e.fact });
  const relPath = sink.publicBaseUrl ? `${e.source}/${e.fact.path}` : e.fact.path;
  const baseUrl = href.slice(0, href.length - encodeURI(relPath).length).replace(/\/$/, '');
  const msg = buildSr3(id, e.atMs, baseUrl, relPath, e.fact);
  const values = { centreId: ctx.centreId, source: e.source, kind: e.kind, path: e.fact.path };
  return {
    seq: e.seq,
    id,
    topic: renderTopic(sink.topic ?? DEFAULT_SR3_TOPIC, values, STYLE[sink.type]),
    body: Buffer.from(JSON.stringify(msg)),
    contentType: 'application/json',
  };
}

/** A handed-on volume: its archive (written on first use) is what the notification links. */
async function volumeMessage(e: OutboxEvent, ctx: FormatContext, id: string): Promise<Formatted> {
  const { sink } = ctx;
  const volume = e.fact.volume;
  if (!volume || !ctx.volumes || !sink.publicBaseUrl)
    return { seq: e.seq, id, reason: 'a volume notification needs the volume and publicBaseUrl' };
  let archive: VolumeObject;
  try {
    archive = await ctx.volumes.get(e.source, volume);
  } catch (err) {
    return { seq: e.seq, id, reason: `volume archive not written: ${(err as Error).message}` };
  }
  const body = encodeVolumeWnm({
    id,
    centreId: ctx.centreId,
    source: e.source,
    sourceUrl: '',
    atMs: e.atMs,
    fact: e.fact,
    wnm: ctx.sources.get(e.source)?.wnm,
    publicBaseUrl: sink.publicBaseUrl,
    archive,
  });
  return dataMessage(e, ctx, id, body);
}

/** Gone upstream, after it had landed: the removal of the data_id its `fetched` message announced. */
function deletionMessage(e: OutboxEvent, ctx: FormatContext, id: string, sourceUrl: string): Formatted {
  return dataMessage(e, ctx, id, encodeWnm(fileWnm(e, ctx, id, sourceUrl, { deletion: true })));
}

/** The WNM of one file version for this sink: what every file message carries, plus `extra`. */
function fileWnm(
  e: OutboxEvent,
  ctx: FormatContext,
  id: string,
  sourceUrl: string,
  extra: Pick<WnmInput, 'deletion' | 'inlineBase64'>,
): WnmMessage {
  const { publicBaseUrl } = ctx.sink;
  return buildWnm({
    id,
    centreId: ctx.centreId,
    source: e.source,
    sourceUrl,
    atMs: e.atMs,
    fact: e.fact,
    wnm: ctx.sources.get(e.source)?.wnm,
    ...(publicBaseUrl && { publicBaseUrl }),
    ...extra,
  });
}

/** A `gone` a WNM sink announces as a deletion: the version had landed (a `fetched` message named it). */
function isAnnouncedRemoval(e: OutboxEvent, sink: SinkConfig): boolean {
  return e.kind === 'gone' && sink.format === 'wnm' && typeof e.fact.localPath === 'string';
}

async function fileMessage(e: OutboxEvent, ctx: FormatContext, id: string, sourceUrl: string): Promise<Formatted> {
  const inline = ctx.sink.inlineContent ? await inlineContent(e) : undefined;
  const wnm = fileWnm(e, ctx, id, sourceUrl, inline === undefined ? {} : { inlineBase64: inline });
  return dataMessage(e, ctx, id, encodeWnm(wnm));
}

export async function formatEvent(e: OutboxEvent, ctx: FormatContext): Promise<Formatted> {
  const { sink } = ctx;
  const sourceUrl = ctx.sources.get(e.source)?.displayUrl ?? `poller:${e.source}`;
  const id = dataMessageId(e.id, sink);
  if (e.kind === 'fetched' && sink.format === 'sr3-v03') return sr3Message(e, ctx, id, sourceUrl);
  if (e.kind === 'volume-complete' || e.kind === 'volume-partial') return volumeMessage(e, ctx, id);
  if (e.kind === 'fetched') return fileMessage(e, ctx, id, sourceUrl);
  if (isAnnouncedRemoval(e, sink)) return deletionMessage(e, ctx, id, sourceUrl);
  const values = { centreId: ctx.centreId, source: e.source, kind: e.kind, path: e.fact.path };
  return {
    seq: e.seq,
    id: e.id,
    topic: renderTopic(sink.lifecycleTopic ?? DEFAULT_LIFECYCLE_TOPIC, values, STYLE[sink.type]),
    body: Buffer.from(JSON.stringify(buildCloudEvent(e, ctx.centreId))),
    contentType: 'application/cloudevents+json',
  };
}

export function isUnsendable(m: SinkMessage | Unsendable): m is Unsendable {
  return 'reason' in m;
}
