/**
 * One message id per message body. An outbox event has one id, but sinks shape its body
 * differently (the link base, inline content, the format): a subscriber of two such sinks, or
 * a Global Broker fed by both, would take two different bodies under one id for duplicates.
 * The id of a data message is derived from the event id and what shapes the body, so the same
 * body always has the same id (re-sends after a crash keep it, broker dedupe still works) and
 * different bodies have different ids.
 */
import { createHash } from 'node:crypto';
import type { SinkConfig } from '../config/load.js';

/** What of a sink's configuration changes a data message's body. */
function bodyShape(sink: SinkConfig): string {
  return JSON.stringify([sink.format, sink.publicBaseUrl ?? null, sink.inlineContent]);
}

/** A UUID (RFC 9562 version 8: custom, name-based on SHA-256) for the event's body at this sink. */
export function dataMessageId(eventId: string, sink: SinkConfig): string {
  const h = createHash('sha256').update(eventId).update('\0').update(bodyShape(sink)).digest();
  h[6] = ((h[6] as number) & 0x0f) | 0x80;
  h[8] = ((h[8] as number) & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}
