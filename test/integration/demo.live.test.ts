/**
 * The live demo as an operator watches it: stopping one of the two radars flags that radar, and
 * only it, within one cadence plus grace (metric, `/api/status`, the log, a `late` CloudEvent in
 * the file sink, then `on-time`); and every query of the
 * shipped Grafana dashboard names metrics and labels that the demo's `/metrics` really has.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LiveDemo, startLiveDemo } from '../helpers/live-demo.js';
import { findSamples, parsePrometheusText } from '../helpers/prometheus-text.js';
import { waitFor } from '../helpers/wait-for.js';

const DASHBOARD = fileURLToPath(new URL('../../deploy/grafana/poller-dashboard.json', import.meta.url));
// Labels Prometheus adds at scrape time (target labels), and the synthetic `up` series.
const TARGET_LABELS = new Set(['instance', 'job']);
const SCRAPE_SERIES = new Set(['up']);
const PROMQL_WORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
]);

let demo: LiveDemo;
beforeAll(async () => {
  demo = await startLiveDemo({ cadence: '3s', grace: '12s' });
}, 60_000);
afterAll(async () => {
  await demo?.close();
});

interface Product {
  product: string;
  state: string;
}
const products = async (): Promise<Product[]> =>
  (await demo.status()).sources.find((s) => s.name === 'demo-radar')?.products ?? [];
const stateOf = (ps: Product[], name: string) => ps.find((p) => p.product === name)?.state;
interface ProductCloudEvent {
  type: string;
  subject: string;
  severity: string;
  data: { state: string; every: number; grace: number };
}
/** The `late` / `on-time` CloudEvents the demo's file sink has written so far. */
const productEvents = async (): Promise<ProductCloudEvent[]> => {
  const text = await readFile(path.join(demo.dir, 'events.jsonl'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => (JSON.parse(l) as { message: ProductCloudEvent }).message)
    .filter((m) => m.type.startsWith('org.poller.product.'));
};

describe('poller demo --live', () => {
  it('flags the stopped radar, and only it, then clears it when the radar is back', async () => {
    // Both radars deliver first (the backfill of the first minutes may have run late).
    await waitFor(
      async () => {
        const ps = await products();
        return stateOf(ps, 'ARBAR') === 'on-time' && stateOf(ps, 'ARPAR') === 'on-time';
      },
      { timeoutMs: 40_000, intervalMs: 250, what: 'both radars on time' },
    );

    // Under load the first minutes' backfill may have made a radar late and on time again: only
    // the events after this point are about the radar taken off the air.
    const before = (await productEvents()).length;
    const marker = path.join(demo.dir, 'remote', 'radar', 'ARPAR', 'OFFLINE');
    await writeFile(marker, '');
    const offAt = Date.now();
    const seen: Product[][] = [];
    const late = await waitFor(
      async () => {
        const ps = await products();
        seen.push(ps);
        return stateOf(ps, 'ARPAR') === 'late' ? ps : undefined;
      },
      { timeoutMs: 45_000, intervalMs: 250, what: 'ARPAR late' },
    );
    const flaggedAfterMs = Date.now() - offAt;
    // The other radar never went late meanwhile.
    expect(seen.map((ps) => stateOf(ps, 'ARBAR'))).not.toContain('late');
    expect(stateOf(late, 'ARBAR')).toBe('on-time');
    const arpar = (await demo.status()).sources[0]?.products.find((p) => p.product === 'ARPAR');
    // Cadence 3 s, grace 12 s (room for a loaded machine): flagged once cadence + grace passed
    // since its last arrival, plus the evaluation tick (a bounded wait, not a speed claim).
    expect(arpar?.everyMs).toBe(3000);
    expect(arpar?.graceMs).toBe(12_000);
    // Not before: its last file landed at least cadence + grace before the verdict.
    expect(Date.now() - (arpar?.arrivedMs ?? Date.now())).toBeGreaterThan(15_000);
    expect(flaggedAfterMs).toBeLessThan(45_000);

    const exp = parsePrometheusText(await demo.metrics());
    expect(findSamples(exp, 'poller_product_late', { source: 'demo-radar', product: 'ARPAR' })[0]?.value).toBe(1);
    expect(findSamples(exp, 'poller_product_late', { source: 'demo-radar', product: 'ARBAR' })[0]?.value).toBe(0);
    await waitFor(() => demo.stdout().includes('"event":"product.late","source":"demo-radar","product":"ARPAR"'), {
      timeoutMs: 5000,
      what: 'the product.late log line',
    });

    // The `late` CloudEvent reached the demo's file sink: one, for ARPAR only.
    const lateEvents = await waitFor(
      async () => {
        const es = (await productEvents()).slice(before).filter((e) => e.type === 'org.poller.product.late');
        return es.length > 0 ? es : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 250, what: 'the late event in the file sink' },
    );
    expect(lateEvents.map((e) => [e.subject, e.severity, e.data.state, e.data.every, e.data.grace])).toEqual([
      ['ARPAR', 'warning', 'late', 3, 12],
    ]);

    const { rm } = await import('node:fs/promises');
    await rm(marker);
    await waitFor(async () => stateOf(await products(), 'ARPAR') === 'on-time', {
      timeoutMs: 30_000,
      intervalMs: 250,
      what: 'ARPAR on time again',
    });
    // ... and one `on-time` when it came back; ARBAR never had either.
    const back = await waitFor(
      async () => {
        const es = (await productEvents()).slice(before);
        return es.some((e) => e.type === 'org.poller.product.on-time') ? es : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 250, what: 'the on-time event in the file sink' },
    );
    // (A startup on-time may have been written just after `before`: count from the late one.)
    const fromLate = back.slice(back.findIndex((e) => e.type === 'org.poller.product.late'));
    expect(fromLate.map((e) => [e.type, e.subject])).toEqual([
      ['org.poller.product.late', 'ARPAR'],
      ['org.poller.product.on-time', 'ARPAR'],
    ]);
  }, 120_000);

  it("names in every dashboard query only metrics and labels the demo's /metrics has", async () => {
    const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as {
      panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
      templating: { list: Array<{ definition?: string }> };
    };
    const exprs = [
      ...dashboard.panels.flatMap((p) => p.targets.map((t) => ({ where: p.title, expr: t.expr }))),
      ...dashboard.templating.list.flatMap((v) => (v.definition ? [{ where: 'variable', expr: v.definition }] : [])),
    ];
    expect(exprs.length).toBeGreaterThan(15);
    const names = new Set(exprs.flatMap((e) => [...e.expr.matchAll(/\bpoller_[a-z_]+/g)].map((m) => m[0])));
    // Some series appear a few seconds after start (the ledger's size after the first retention pass).
    const exp = await waitFor(
      async () => {
        const e = parsePrometheusText(await demo.metrics());
        return [...names].every((n) => e.samples.some((s) => s.name === n)) ? e : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500, what: 'every dashboard metric in /metrics' },
    );

    const problems: string[] = [];
    for (const { where, expr } of exprs) {
      const metrics = [...expr.matchAll(/\b([a-z_:][a-z0-9_:]*)\s*(?=\{|\[|\)|$|\s|,)/g)]
        .map((m) => m[1] as string)
        .filter((n) => n.startsWith('poller_') || SCRAPE_SERIES.has(n));
      const labels = new Set<string>();
      for (const m of expr.matchAll(/\{([^}]*)\}/g))
        for (const l of (m[1] ?? '').matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)) labels.add(l[1] as string);
      for (const m of expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g))
        for (const l of (m[1] ?? '').split(',')) if (l.trim()) labels.add(l.trim());
      for (const m of expr.matchAll(/label_values\(\s*[a-z_]+\s*,\s*([a-z_]+)\s*\)/g)) labels.add(m[1] as string);
      if (metrics.length === 0) problems.push(`${where}: no poller metric in ${expr}`);
      for (const metric of metrics) {
        const samples = exp.samples.filter((s) => s.name === metric);
        if (samples.length === 0) problems.push(`${where}: ${metric} is not in /metrics`);
        for (const label of labels) {
          if (TARGET_LABELS.has(label) || PROMQL_WORDS.has(label)) continue;
          if (!samples.some((s) => label in s.labels)) problems.push(`${where}: ${metric} has no label ${label}`);
        }
      }
    }
    expect(problems).toEqual([]);
  }, 60_000);
});
