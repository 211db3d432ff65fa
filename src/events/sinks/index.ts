/** The sink of a configured type. Broker clients are loaded only when a sink of theirs is configured. */
import type { SinkConfig } from '../../config/load.js';
import type { Sink } from './sink.js';

export async function openSink(cfg: SinkConfig): Promise<Sink> {
  switch (cfg.type) {
    case 'mqtt':
      return new (await import('./mqtt-sink.js')).MqttSink(cfg);
    case 'nats':
      return new (await import('./nats-sink.js')).NatsSink(cfg);
    case 'amqp':
      return new (await import('./amqp-sink.js')).AmqpSink(cfg);
    case 'file':
      return new (await import('./file-sink.js')).FileSink(cfg);
    case 'webhook':
      return new (await import('./webhook-sink.js')).WebhookSink(cfg);
  }
}
