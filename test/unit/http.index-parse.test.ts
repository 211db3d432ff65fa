import { describe, expect, it } from 'vitest';
import { agreesWithIndex, parseIndex } from '../../src/sources/http/index-parse.js';

const DIR = 'http://data.example.org/radar/2026/';
const opts = { dirUrl: DIR, timezone: 'UTC' };

describe('parseIndex', () => {
  it('reads an nginx HTML page: exact sizes, minute times in UTC, long names from the href', () => {
    const html = `<html><head><title>Index of /radar/2026/</title></head><body><h1>Index of /radar/2026/</h1><hr><pre><a href="../">../</a>
<a href="11/">11/</a>                                                23-Nov-2026 10:05                   -
<a href="a%20very%20long%20name%20that%20nginx%20cuts%20in%20the%20text%20column.bufr">a very long name that nginx cuts in the text c..&gt;</a> 23-Nov-2026 10:06              300000
</pre><hr></body></html>`;
    const { entries, dropped } = parseIndex(html, opts);
    expect(dropped).toBe(1);
    expect(entries).toEqual([
      { name: '11', type: 'dir', mtimeMs: Date.UTC(2026, 10, 23, 10, 5), mtimePrecision: 'minute', sizeExact: false },
      {
        name: 'a very long name that nginx cuts in the text column.bufr',
        type: 'file',
        mtimeMs: Date.UTC(2026, 10, 23, 10, 6),
        mtimePrecision: 'minute',
        sizeBytes: 300000,
        sizeStepBytes: 1,
        sizeExact: true,
      },
    ]);
  });

  it('reads nginx JSON', () => {
    const { entries } = parseIndex(
      '[{ "name":"x.bufr", "type":"file", "mtime":"Mon, 23 Nov 2026 10:05:07 GMT", "size":42 },{ "name":"d", "type":"directory", "mtime":"Mon, 23 Nov 2026 10:05:07 GMT" },{ "name":"../etc", "type":"file", "size":1 }]',
      opts,
    );
    expect(entries.map((e) => [e.name, e.type, e.sizeBytes, e.sizeExact])).toEqual([
      ['x.bufr', 'file', 42, true],
      ['d', 'dir', undefined, false],
    ]);
    expect(entries[0]?.mtimeMs).toBe(Date.UTC(2026, 10, 23, 10, 5, 7));
  });

  it('reads an Apache fancy table in the server timezone, abbreviated sizes, sort links dropped', () => {
    const html = `<table><tr><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th></tr>
<tr><td valign="top"><img src="/icons/back.gif" alt="[PARENTDIR]"></td><td><a href="/radar/">Parent Directory</a></td><td>&nbsp;</td><td align="right">  - </td></tr>
<tr><td valign="top"><img src="/icons/unknown.gif" alt="[   ]"></td><td><a href="vol.bufr">vol.bufr</a></td><td align="right">2026-11-23 11:05  </td><td align="right">293K</td><td>&nbsp;</td></tr>
<tr><td valign="top"><img src="/icons/unknown.gif" alt="[   ]"></td><td><a href="tiny.bufr">tiny.bufr</a></td><td align="right">2026-11-23 11:05  </td><td align="right"> 17 </td><td>&nbsp;</td></tr>
</table>`;
    const { entries, dropped } = parseIndex(html, { dirUrl: DIR, timezone: 'Europe/Paris' });
    expect(dropped).toBe(3);
    expect(entries[0]).toMatchObject({
      name: 'vol.bufr',
      sizeBytes: 293 * 1024,
      sizeExact: false,
      sizeStepBytes: 1024,
      mtimeMs: Date.UTC(2026, 10, 23, 10, 5),
    });
    expect(entries[1]).toMatchObject({ name: 'tiny.bufr', sizeBytes: 17, sizeExact: true });
  });

  it('reads Apache plain, lighttpd and python http.server pages', () => {
    const plain = parseIndex(
      '<ul><li><a href="/radar/"> Parent Directory</a></li><li><a href="a.bufr"> a.bufr</a></li><li><a href="sub/"> sub/</a></li></ul>',
      opts,
    );
    expect(plain.entries.map((e) => [e.name, e.type, e.sizeBytes])).toEqual([
      ['a.bufr', 'file', undefined],
      ['sub', 'dir', undefined],
    ]);
    const lighttpd = parseIndex(
      '<tr><td class="n"><a href="../">Parent Directory</a>/</td></tr><tr><td class="n"><a href="b.bufr">b.bufr</a></td><td class="m">2026-Nov-23 10:05:22</td><td class="s">24.4K</td><td class="t">application/octet-stream</td></tr>',
      opts,
    );
    expect(lighttpd.entries).toEqual([
      {
        name: 'b.bufr',
        type: 'file',
        mtimeMs: Date.UTC(2026, 10, 23, 10, 5, 22),
        mtimePrecision: 's',
        sizeBytes: Math.round(24.4 * 1024),
        sizeStepBytes: 102,
        sizeExact: false,
      },
    ]);
    const python = parseIndex(
      '<ul>\n<li><a href="%C3%BC%20x.bufr">ü x.bufr</a></li>\n<li><a href="link">link@</a></li>\n</ul>',
      opts,
    );
    expect(python.entries.map((e) => e.name)).toEqual(['ü x.bufr', 'link']);
  });

  it('keeps only direct children of the listed directory on the same origin', () => {
    const html = [
      '../',
      '/',
      '/etc/passwd',
      'http://evil.example.com/radar/2026/x.bufr',
      '//evil.example.com/x.bufr',
      'https://data.example.org/radar/2026/x.bufr',
      'http://data.example.org:8080/radar/2026/x.bufr',
      'sub/deeper/x.bufr',
      '%2e%2e/x.bufr',
      'a%2Fb.bufr',
      'a%5Cb.bufr',
      'x.bufr?download=1',
      '#top',
      'javascript:alert(1)',
      'mailto:x@example.org',
      'http://data.example.org/radar/2026/ok-absolute.bufr',
      'ok.bufr',
    ]
      .map((h) => `<a href="${h}">x</a>`)
      .join('\n');
    const { entries, dropped } = parseIndex(html, opts);
    expect(entries.map((e) => e.name)).toEqual(['ok-absolute.bufr', 'ok.bufr']);
    expect(dropped).toBe(15);
  });
});

describe('agreesWithIndex', () => {
  it('accepts a known version inside the row minute and rounding, and refuses one outside', () => {
    const row = {
      sizeBytes: 293 * 1024,
      sizeStepBytes: 1024,
      mtimeMs: Date.UTC(2026, 10, 23, 10, 5),
      mtimePrecision: 'minute' as const,
    };
    expect(agreesWithIndex({ sizeBytes: 300_000, mtimeMs: Date.UTC(2026, 10, 23, 10, 5, 40) }, row)).toBe(true);
    expect(agreesWithIndex({ sizeBytes: 300_000, mtimeMs: Date.UTC(2026, 10, 23, 10, 6) }, row)).toBe(false);
    expect(agreesWithIndex({ sizeBytes: 310_000, mtimeMs: Date.UTC(2026, 10, 23, 10, 5) }, row)).toBe(false);
    expect(agreesWithIndex({ sizeBytes: 1, mtimeMs: 5 }, {})).toBe(true);
  });
});
