import { type Logger, pino } from 'pino';

/** A parsed pino line. */
export type LogLine = Record<string, unknown> & { level: number; msg?: string; event?: string };

/** A logger whose lines are collected as parsed objects, for assertions on log events. */
export interface LogSink {
  readonly log: Logger;
  readonly lines: LogLine[];
  /** Lines whose `event` field equals `event`. */
  events(event: string): LogLine[];
}

export function createLogSink(level: pino.LevelWithSilent = 'trace'): LogSink {
  const lines: LogLine[] = [];
  // pino writes each line synchronously to any object with write(string).
  const destination = {
    write(chunk: string): void {
      for (const text of chunk.split('\n')) {
        if (text.trim() !== '') lines.push(JSON.parse(text) as LogLine);
      }
    },
  };
  const log = pino({ level, base: undefined }, destination);
  return { log, lines, events: (event) => lines.filter((line) => line.event === event) };
}
