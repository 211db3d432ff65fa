/**
 * JSON-lines sink: one line per event (`{"topic", "id", "message"}`) appended to a file; `flush`
 * fsyncs, and the dispatcher marks events sent only after it.
 */
import { type FileHandle, mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import type { SinkConfig } from '../../config/load.js';
import type { SinkMessage } from '../payload.js';
import { type PublishAck, publishFailed, type Sink } from './sink.js';

export class FileSink implements Sink {
  readonly #cfg: SinkConfig;
  #fh: FileHandle | undefined;
  /**
   * The last append: the dispatcher publishes a window of events at once, and concurrent appends
   * run on separate pool threads, so each waits for the one before it to keep the file in order.
   */
  #tail: Promise<unknown> = Promise.resolve();

  constructor(cfg: SinkConfig) {
    this.#cfg = cfg;
  }

  async open(): Promise<void> {
    if (this.#fh) return;
    try {
      await mkdir(path.dirname(this.#cfg.url), { recursive: true });
      this.#fh = await open(this.#cfg.url, 'a');
    } catch (err) {
      throw publishFailed(this.#cfg.name, err);
    }
  }

  async publish(m: SinkMessage): Promise<PublishAck> {
    const fh = this.#fh;
    if (!fh) throw publishFailed(this.#cfg.name, 'not open');
    const line = `{"topic":${JSON.stringify(m.topic)},"id":${JSON.stringify(m.id)},"message":${m.body.toString('utf8')}}\n`;
    const append = this.#tail.then(() => fh.appendFile(line));
    this.#tail = append.catch(() => undefined);
    await append;
    return {};
  }

  async flush(): Promise<void> {
    await this.#fh?.datasync();
  }

  async close(): Promise<void> {
    const fh = this.#fh;
    this.#fh = undefined;
    await fh?.close().catch(() => undefined);
  }
}
