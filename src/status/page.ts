/**
 * The status page: one server-rendered HTML document with a small inline script that polls
 * `api/status` and redraws without a reload. One renderer, {@link renderStatusBody}, draws the
 * sources and failures both here (first paint) and in the browser (its source text is put into
 * the page's script), so the two can never drift apart. No framework and nothing loaded from
 * outside: the Content-Security-Policy allows only this page's nonced script and style.
 */
import type { SourceStatusView, StatusReport } from './report.js';

export interface PageOptions {
  /** Per-response random value the CSP allows the inline script and style by. */
  nonce: string;
  /** How often the page polls `api/status`. */
  refreshMs: number;
}

/**
 * The Content-Security-Policy of the page: its own nonced script and style, requests to its own
 * origin only, no frames, no forms, no base URL, nothing from elsewhere.
 */
export function pageCsp(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** The formatting helpers the renderers share; self-contained, as its source text runs in the browser. */
export function statusKit(r: StatusReport) {
  const esc = (v: unknown): string =>
    String(v).replace(
      /[&<>"']/g,
      (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
    );
  const span = (ms: number): string => {
    const s = Math.round(Math.abs(ms) / 1000);
    if (s < 90) return `${s} s`;
    const m = Math.round(s / 60);
    if (m < 90) return `${m} min`;
    const h = Math.round(m / 6) / 10;
    if (h < 48) return `${h} h`;
    return `${Math.round(h / 24)} d`;
  };
  const ago = (ms: number | null): string => (ms === null ? 'never' : `${span(r.generatedAtMs - ms)} ago`);
  const until = (ms: number | null): string => {
    if (ms === null) return '<code>poller retry</code>';
    return ms <= r.generatedAtMs ? 'due now' : `in ${span(ms - r.generatedAtMs)}`;
  };
  const bytes = (n: number): string => {
    const units = ['B', 'kB', 'MB', 'GB', 'TB'];
    let v = n;
    let i = 0;
    while (v >= 1000 && i < units.length - 1) {
      v /= 1000;
      i++;
    }
    return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
  };
  const time = (ms: number): string => new Date(ms).toISOString().slice(11, 16);
  const chart = (files: readonly number[], slotMs: number): string => {
    const max = Math.max(1, ...files);
    const n = files.length;
    const bars = files
      .map((v, i) => {
        if (v === 0) return '';
        const h = Math.max(1, Math.round((v / max) * 40));
        const end = r.generatedAtMs - (n - 1 - i) * slotMs;
        return `<rect x="${i}" y="${40 - h}" width="1" height="${h}"><title>${time(end - slotMs)}–${time(end)} UTC: ${v} file(s)</title></rect>`;
      })
      .join('');
    return `<svg class="chart" viewBox="0 0 ${n} 40" preserveAspectRatio="none" role="img" aria-label="files per ${span(slotMs)} over the last ${span(n * slotMs)}, at most ${max}">${bars}</svg><div class="axis"><span>-${span(n * slotMs)}</span><span>max ${max} / ${span(slotMs)}</span><span>now</span></div>`;
  };
  return { esc, span, ago, until, bytes, chart };
}

export type StatusKit = ReturnType<typeof statusKit>;

/** One source's card: state, freshness, counts, a row per expected product, the chart. Self-contained. */
export function renderSourceCard(s: SourceStatusView, k: StatusKit): string {
  const { esc, span, ago, bytes, chart } = k;
  const files = Object.entries(s.files)
    .map(([state, n]) => `<span class="count">${esc(state)} <b>${n}</b></span>`)
    .join(' ');
  const newest =
    s.newestFileAgeMs === null
      ? 'none yet'
      : `${span(s.newestFileAgeMs)} old${s.expectEveryMs === null ? '' : `, expected every ${span(s.expectEveryMs)}`}`;
  const products = s.products
    .map(
      (p) =>
        `<tr class="product product-${esc(p.state)}" data-product="${esc(p.product)}"><td>${esc(p.product)}</td><td class="badge">${esc(p.state)}</td><td>${p.arrivedMs === null ? 'none yet' : `landed ${ago(p.arrivedMs)}`}</td><td>every ${span(p.everyMs)}${p.graceMs ? ` + ${span(p.graceMs)}` : ''}</td></tr>`,
    )
    .join('');
  // Paused by an error (server gone, login refused) is red; paused by the config is grey.
  const byError = s.state === 'paused' && s.enabled && s.configured;
  return `<article class="source state-${esc(s.state)}${byError ? ' has-error' : ''}" data-source="${esc(s.name)}">
<header><h2>${esc(s.name)}</h2><span class="badge">${esc(s.state)}</span></header>
<p class="url">${esc(s.url ?? '')}</p>
<dl>
<dt>last successful poll</dt><dd class="last-success">${ago(s.lastSuccessMs)}</dd>
<dt>newest file</dt><dd class="newest fresh-${esc(s.freshness)}">${esc(newest)}</dd>
${s.pausedReason === null || s.pausedReason === s.lastError ? '' : `<dt>paused</dt><dd class="paused-reason">${esc(s.pausedReason)}</dd>`}
${s.lastError === null ? '' : `<dt>last error</dt><dd class="last-error">${esc(s.lastError)}</dd>`}
<dt>files</dt><dd class="files">${files || 'none'}</dd>
<dt>last hour</dt><dd class="last-hour">${s.lastHour.files} file(s), ${bytes(s.lastHour.bytes)}</dd>
</dl>
${products ? `<table class="products" aria-label="expected products"><tbody>${products}</tbody></table>` : ''}
${chart(s.chart.files, s.chart.slotMs)}
</article>`;
}

/**
 * The sources and failures as HTML, from a status document. Self-contained given its kit and card
 * renderer (no reference to anything outside its own body): its source text also runs in the browser.
 */
export function renderStatusBody(
  r: StatusReport,
  k: StatusKit = statusKit(r),
  card: (s: SourceStatusView, k: StatusKit) => string = renderSourceCard,
): string {
  const { esc, ago, until } = k;
  const cards = r.sources.map((s) => card(s, k)).join('\n');
  const rows = r.failures
    .map(
      (
        f,
      ) => `<tr class="failure ${esc(f.state)}" tabindex="0" data-source="${esc(f.source)}" data-path="${esc(f.path)}">
<td data-label="when">${ago(f.updatedMs)}</td><td data-label="source">${esc(f.source)}</td><td data-label="path" class="path">${esc(f.path)}</td>
<td data-label="plugin">${esc(f.plugin ?? (f.stage === 'fetch' ? '(fetch)' : ''))}</td><td data-label="code"><code>${esc(f.errorCode ?? '')}</code></td>
<td data-label="message" class="message">${esc(f.message ?? '')}</td><td data-label="next retry">${f.state === 'quarantined' ? `quarantined; ${until(null)}` : until(f.nextRetryMs)}</td></tr>`,
    )
    .join('\n');
  const failures = r.failures.length
    ? `<table class="failures"><thead><tr><th>when</th><th>source</th><th>path</th><th>plugin</th><th>code</th><th>message</th><th>next retry</th></tr></thead><tbody>
${rows}
</tbody></table><p class="hint">Select a row for <code>poller why</code>.</p>`
    : '<p class="none">No failed or quarantined files.</p>';

  const gone = r.gone ?? [];
  const goneRows = gone
    .map(
      (g) =>
        `<tr><td data-label="when">${ago(g.goneMs)}</td><td data-label="source">${esc(g.source)}</td><td data-label="path" class="path">${esc(g.path)}</td></tr>`,
    )
    .join('\n');
  const goneSection = gone.length
    ? `\n<section class="failures-section gone-section"><h2>Removed upstream <span class="n">${gone.length}</span></h2><table class="failures"><thead><tr><th>when</th><th>source</th><th>path</th></tr></thead><tbody>\n${goneRows}\n</tbody></table></section>`
    : '';
  const l = r.ledger;
  const moved = l?.lastSwitch
    ? `; failed over ${ago(l.lastSwitch.atMs)} from <code>${esc(l.lastSwitch.from)}</code> (${esc(l.lastSwitch.reason)})`
    : '';
  const ledgerLine = l
    ? `<p class="ledger-conn${l.switching ? ' switching' : ''}">ledger on <code>${esc(l.host)}</code>${l.switching ? ', looking for the primary' : ''}${moved}</p>\n`
    : '';
  return `${ledgerLine}<section class="sources" aria-label="sources">${cards}</section>
<section class="failures-section"><h2>Failures and quarantines <span class="n">${r.failures.length}</span></h2>${failures}</section>${goneSection}`;
}

/** The little of the DOM the page script uses (the project compiles without the DOM library). */
interface PageElement {
  textContent: string | null;
  innerHTML: string;
  hidden: boolean;
  readonly dataset: Record<string, string | undefined>;
  readonly classList: { toggle(name: string, on: boolean): void };
  querySelectorAll(selector: string): Iterable<PageElement>;
  closest(selector: string): PageElement | null;
  addEventListener(type: string, listener: (ev: PageEvent) => void): void;
}
interface PageEvent {
  readonly target: unknown;
  readonly key?: string;
  preventDefault(): void;
}
interface PageDocument {
  getElementById(id: string): PageElement | null;
  readonly body: PageElement;
}

/**
 * Runs in the browser: poll `api/status`, redraw with the renderer it is given, show `poller why`
 * for a selected failure. Self-contained like {@link renderStatusBody}.
 */
function clientMain(render: (r: StatusReport) => string): void {
  const document = (globalThis as unknown as { document: PageDocument }).document;
  const byId = (id: string) => document.getElementById(id) as PageElement;
  const main = byId('status');
  const updated = byId('updated');
  const conn = byId('conn');
  const why = byId('why');
  const whyTitle = byId('why-path');
  const whyText = byId('why-text');
  const every = Number(document.body.dataset['refreshMs']) || 5000;
  let selected: { source: string; path: string } | undefined;

  const mark = () => {
    for (const row of main.querySelectorAll('tr[data-path]')) {
      const on =
        selected !== undefined && row.dataset['source'] === selected.source && row.dataset['path'] === selected.path;
      row.classList.toggle('selected', on);
    }
  };
  const refresh = async () => {
    try {
      const res = await fetch('api/status', { credentials: 'same-origin' });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const report = (await res.json()) as StatusReport;
      main.innerHTML = render(report);
      mark();
      updated.textContent = `updated ${new Date(report.generatedAtMs).toISOString().slice(11, 19)} UTC`;
      conn.textContent = '';
      document.body.dataset['generatedAtMs'] = String(report.generatedAtMs);
    } catch (err) {
      conn.textContent = `cannot reach the poller (${(err as Error).message}); retrying`;
    } finally {
      setTimeout(refresh, every);
    }
  };
  const showWhy = async (source: string, path: string) => {
    selected = { source, path };
    mark();
    whyTitle.textContent = `${source}: ${path}`;
    whyText.textContent = 'loading…';
    why.hidden = false;
    try {
      const q = new URLSearchParams({ source, path });
      const res = await fetch(`api/why?${q}`, { credentials: 'same-origin' });
      whyText.textContent = res.ok ? await res.text() : `HTTP ${res.status}`;
    } catch (err) {
      whyText.textContent = `cannot reach the poller (${(err as Error).message})`;
    }
  };
  const pick = (target: unknown) => {
    const row = (target as PageElement | null)?.closest?.('tr[data-path]') ?? null;
    if (row) void showWhy(row.dataset['source'] ?? '', row.dataset['path'] ?? '');
  };
  main.addEventListener('click', (ev) => pick(ev.target));
  main.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' || ev.key === ' ') {
      ev.preventDefault();
      pick(ev.target);
    }
  });
  byId('why-close').addEventListener('click', () => {
    why.hidden = true;
    selected = undefined;
    mark();
  });
  setTimeout(refresh, every);
}

const STYLE = `
:root { color-scheme: light dark; --ok: #1a7f37; --late: #b07800; --bad: #cf222e; --muted: #6e7781; --line: #d0d7de; --card: #ffffff; --bg: #f6f8fa; }
@media (prefers-color-scheme: dark) { :root { --card: #161b22; --bg: #0d1117; --line: #30363d; --muted: #8b949e; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; background: var(--bg); }
body > header { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: baseline; padding: .6rem 1rem; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.2rem; margin: 0; }
#updated { color: var(--muted); }
#conn { color: var(--bad); font-weight: 600; }
main { padding: 1rem; }
.sources { display: grid; grid-template-columns: repeat(auto-fill, minmax(20rem, 1fr)); gap: 1rem; }
.source { background: var(--card); border: 1px solid var(--line); border-left: 6px solid var(--ok); border-radius: 6px; padding: .6rem .8rem; min-width: 0; }
.source header { display: flex; justify-content: space-between; gap: .5rem; align-items: center; }
.source h2 { font-size: 1.05rem; margin: 0; overflow-wrap: anywhere; flex: 1 1 auto; min-width: 0; }
.badge { flex: none; border-radius: 1rem; padding: .1rem .6rem; color: #fff; background: var(--ok); font-weight: 600; font-size: .85rem; text-align: right; }
.state-late { border-left-color: var(--late); } .state-late .badge { background: var(--late); }
.state-failing { border-left-color: var(--bad); } .state-failing .badge { background: var(--bad); }
.state-paused { border-left-color: var(--muted); } .state-paused .badge { background: var(--muted); }
.state-paused.has-error { border-left-color: var(--bad); } .state-paused.has-error .badge { background: var(--bad); }
.url { color: var(--muted); margin: .2rem 0 .4rem; overflow-wrap: anywhere; font-size: .85rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .1rem .8rem; margin: 0 0 .5rem; }
dt { color: var(--muted); } dd { margin: 0; overflow-wrap: anywhere; }
.fresh-late { color: var(--late); font-weight: 600; } .fresh-missing { color: var(--bad); font-weight: 600; }
.last-error { color: var(--bad); }
.products { width: 100%; border-collapse: collapse; margin: .3rem 0; font-size: .9rem; }
.products td { padding: .1rem .3rem; border-top: 1px solid var(--line); }
.products .badge { display: table-cell; background: var(--ok); }
.product-late .badge { background: var(--bad); } .product-waiting .badge { background: var(--muted); }
.count { white-space: nowrap; margin-right: .4rem; }
.chart { width: 100%; height: 48px; display: block; background: var(--bg); border-radius: 3px; }
.chart rect { fill: #2f81f7; }
.axis { display: flex; justify-content: space-between; color: var(--muted); font-size: .75rem; }
.failures-section h2 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
table.failures { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); }
.failures th, .failures td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
.failures td.path, .failures td.message { overflow-wrap: anywhere; }
tr.failure { cursor: pointer; } tr.failure:hover, tr.failure:focus, tr.failure.selected { background: rgba(47,129,247,.12); outline: none; }
tr.quarantined td:first-child { border-left: 4px solid var(--bad); } tr.failed td:first-child { border-left: 4px solid var(--late); }
.hint, .none { color: var(--muted); }
#why { position: sticky; bottom: 0; margin: 0 1rem 1rem; background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .5rem .8rem; box-shadow: 0 -2px 8px rgba(0,0,0,.12); }
#why header { display: flex; justify-content: space-between; gap: 1rem; align-items: center; }
#why h2 { font-size: 1rem; margin: 0; overflow-wrap: anywhere; }
#why-text { white-space: pre-wrap; overflow-wrap: anywhere; max-height: 40vh; overflow: auto; margin: .4rem 0 0; }
@media (max-width: 40rem) {
  main { padding: .5rem; }
  .sources { grid-template-columns: 1fr; }
  .failures thead { display: none; }
  .failures tr, .failures td { display: block; }
  .failures tr { border-bottom: 2px solid var(--line); padding: .3rem 0; }
  .failures td { border: 0; padding: .1rem .5rem; }
  .failures td::before { content: attr(data-label) ": "; color: var(--muted); }
  #why { margin: 0 .5rem .5rem; }
}
`;

/** The renderer as the browser gets it: {@link renderStatusBody} with its kit and card renderer, from their own source text. */
export function rendererSource(): string {
  return `(r) => (${renderStatusBody.toString()})(r, (${statusKit.toString()})(r), ${renderSourceCard.toString()})`;
}

/** The whole page, with the first paint rendered from `report`. */
export function renderPage(report: StatusReport, options: PageOptions): string {
  const nonce = options.nonce;
  // `</script` cannot occur in these sources, but a future edit must not be able to end the script early.
  const script = `"use strict";(${clientMain.toString()})(${rendererSource()});`.replace(/<\/script/gi, '<\\/script');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>poller status</title>
<style nonce="${nonce}">${STYLE}</style>
</head>
<body data-refresh-ms="${Math.max(250, Math.round(options.refreshMs))}" data-generated-at-ms="${report.generatedAtMs}">
<header><h1>poller</h1><span id="updated">updated ${new Date(report.generatedAtMs).toISOString().slice(11, 19)} UTC</span><span id="conn" role="status"></span></header>
<main id="status">${renderStatusBody(report)}</main>
<section id="why" hidden aria-live="polite"><header><h2>poller why <span id="why-path"></span></h2><button type="button" id="why-close">close</button></header><pre id="why-text"></pre></section>
<script nonce="${nonce}">${script}</script>
</body>
</html>
`;
}
