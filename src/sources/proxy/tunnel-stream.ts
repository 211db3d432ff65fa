/**
 * A Duplex that stands for a connection still being opened (a proxy tunnel, then TLS over it):
 * writes wait (corked) until it is there, then everything flows both ways. mqtt.js asks for its
 * stream synchronously; this is that stream.
 */
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';

export class TunnelStream extends Duplex {
  #socket: Socket | undefined;
  #wantsData = false;

  constructor(opening: Promise<Socket>) {
    super({ autoDestroy: false });
    this.cork();
    opening.then(
      (socket) => this.#start(socket),
      (err: Error) => this.destroy(err),
    );
  }

  #start(socket: Socket): void {
    if (this.destroyed) {
      socket.destroy();
      return;
    }
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#wantsData = this.push(chunk);
      if (!this.#wantsData) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
    if (this.#wantsData) socket.resume();
    else socket.pause();
    this.emit('connect');
    this.uncork();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.#socket === undefined) {
      callback(new Error('tunnel not open'));
      return;
    }
    this.#socket.write(chunk, callback);
  }

  override _read(): void {
    this.#wantsData = true;
    this.#socket?.resume();
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.#socket?.end();
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#socket?.destroy();
    callback(err);
  }
}
