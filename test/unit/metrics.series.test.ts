import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/observe/metrics.js';
import { findSamples, parsePrometheusText } from '../helpers/prometheus-text.js';

const NOW = Date.parse('2026-11-23T06:00:00Z');

describe('createMetrics', () => {
  it('renders every series as valid Prometheus text with poller_ names', async () => {
    const metrics = createMetrics({ nowMs: () => NOW });
    metrics.filesListed('radar-north', 12);
    metrics.fileFetched('radar-north', 4096, 250, NOW - 90_000);
    metrics.fileFailed('radar-north', 'fetch');
    metrics.fileQuarantined('radar-north');
    metrics.pluginRun('bufr', 'succeeded', 40);
    metrics.pluginRun('bufr', 'failed', 15);
    metrics.pollSucceeded('radar-north', NOW - 30_000);
    metrics.pollFailed('radar-south');
    metrics.poolInUse('radar-north', 3);
    metrics.listingTruncated('radar-north');

    const text = await metrics.render();
    const exp = parsePrometheusText(text);
    for (const name of exp.types.keys()) expect(name.startsWith('poller_')).toBe(true);

    const one = (name: string, labels: Record<string, string>) => {
      const found = findSamples(exp, name, labels);
      expect(found, `${name} ${JSON.stringify(labels)}`).toHaveLength(1);
      return found[0]?.value;
    };
    const src = { source: 'radar-north' };
    expect(one('poller_files_listed_total', src)).toBe(12);
    expect(one('poller_files_fetched_total', src)).toBe(1);
    expect(one('poller_fetched_bytes_total', src)).toBe(4096);
    expect(one('poller_files_failed_total', { ...src, stage: 'fetch' })).toBe(1);
    expect(one('poller_files_quarantined_total', src)).toBe(1);
    expect(one('poller_fetch_duration_seconds_count', src)).toBe(1);
    expect(one('poller_fetch_duration_seconds_sum', src)).toBeCloseTo(0.25);
    expect(one('poller_plugin_duration_seconds_count', { plugin: 'bufr', outcome: 'succeeded' })).toBe(1);
    expect(one('poller_plugin_failures_total', { plugin: 'bufr' })).toBe(1);
    expect(one('poller_last_poll_success_timestamp_seconds', src)).toBe((NOW - 30_000) / 1000);
    expect(one('poller_poll_failures_total', { source: 'radar-south' })).toBe(1);
    expect(one('poller_pool_connections_in_use', src)).toBe(3);
    expect(one('poller_listing_truncated_total', src)).toBe(1);
    expect(one('poller_newest_file_age_seconds', src)).toBe(90);
    expect(exp.types.get('poller_fetch_duration_seconds')).toBe('histogram');
  });

  it('computes the newest file age at scrape time and ignores older backfilled files', async () => {
    let now = NOW;
    const metrics = createMetrics({ nowMs: () => now });
    metrics.fileFetched('radar', 1, 1, NOW - 60_000);
    metrics.fileFetched('radar', 1, 1, NOW - 86_400_000); // a backfilled old file
    const age = async () =>
      findSamples(parsePrometheusText(await metrics.render()), 'poller_newest_file_age_seconds')[0]?.value;
    expect(await age()).toBe(60);
    now += 600_000;
    expect(await age()).toBe(660);
  });

  it('keeps registries apart', async () => {
    const a = createMetrics();
    const b = createMetrics();
    a.pollFailed('x');
    expect(await b.render()).not.toContain('source="x"');
  });

  it('can add process metrics', async () => {
    const metrics = createMetrics({ processMetrics: true });
    const exp = parsePrometheusText(await metrics.render());
    expect(exp.types.has('poller_process_cpu_seconds_total')).toBe(true);
  });
});
