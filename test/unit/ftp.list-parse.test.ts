import { describe, expect, it } from 'vitest';
import {
  looksTruncated,
  parseList,
  parseMlsd,
  parseMlsdTime,
  zonedTimeToUtcMs,
} from '../../src/sources/ftp/list-parse.js';

const NOW = Date.UTC(2026, 10, 23, 12, 0, 0); // 2026-11-23T12:00:00Z
const utc = { timezone: 'UTC', nowMs: NOW };

describe('parseList: Unix format', () => {
  it('parses a recent file (year-less date) with minute precision in this year', () => {
    const { entries, unparsed } = parseList(
      '-rw-r--r--    1 1001     1001         1234 Nov 22 05:16 T_PAGB41.bufr\r\n',
      utc,
    );
    expect(unparsed).toEqual([]);
    expect(entries).toEqual([
      {
        name: 'T_PAGB41.bufr',
        type: 'file',
        sizeBytes: 1234,
        mtimeMs: Date.UTC(2026, 10, 22, 5, 16),
        mtimePrecision: 'minute',
      },
    ]);
  });

  it('puts a year-less date that would be in the future into last year', () => {
    const { entries } = parseList('-rw-r--r-- 1 ftp ftp 10 Dec 24 18:00 xmas.txt', utc);
    expect(entries[0]?.mtimeMs).toBe(Date.UTC(2025, 11, 24, 18, 0));
  });

  it('keeps a year-less date a few hours ahead (clock skew) in this year', () => {
    const { entries } = parseList('-rw-r--r-- 1 ftp ftp 10 Nov 23 15:00 skew.txt', utc);
    expect(entries[0]?.mtimeMs).toBe(Date.UTC(2026, 10, 23, 15, 0));
  });

  it('turns year-less dates in the first days of January into the right year', () => {
    const newYear = { timezone: 'UTC', nowMs: Date.UTC(2027, 0, 2, 0, 30) };
    const { entries } = parseList(
      ['-rw-r--r-- 1 ftp ftp 1 Dec 31 23:59 a', '-rw-r--r-- 1 ftp ftp 1 Jan  1 00:01 b'].join('\n'),
      newYear,
    );
    expect(entries.map((e) => new Date(e.mtimeMs ?? Number.NaN).toISOString())).toEqual([
      '2026-12-31T23:59:00.000Z',
      '2027-01-01T00:01:00.000Z',
    ]);
  });

  it('parses an old file (date with a year) with day precision', () => {
    const { entries } = parseList('-rw-r--r--    1 ftp      ftp          9 Nov 22  2025 old.txt', utc);
    expect(entries[0]).toMatchObject({ name: 'old.txt', mtimeMs: Date.UTC(2025, 10, 22), mtimePrecision: 'day' });
  });

  it('reads directories, symlinks with targets, names with spaces and non-ASCII', () => {
    const text = [
      'total 24',
      'drwxr-xr-x    2 ftp      ftp          4096 Nov 20 10:00 .',
      'drwxr-xr-x    3 ftp      ftp          4096 Nov 20 10:00 ..',
      'drwxr-xr-x    2 ftp      ftp          4096 Nov 20 10:00 dir with space',
      'lrwxrwxrwx    1 ftp      ftp            12 Nov 20 10:01 latest -> 2026/11/20/a.bufr',
      '-rw-r--r--    1 ftp      ftp             3 Nov 20 10:02  leading space.txt',
      '-rw-r--r--    1 ftp      ftp             3 Nov 20 10:02 ünïcödé-雨 Nov 20 10:02.txt',
    ].join('\r\n');
    const { entries, unparsed, lineCount } = parseList(text, utc);
    expect(unparsed).toEqual([]);
    expect(lineCount).toBe(6);
    expect(entries.map((e) => [e.name, e.type])).toEqual([
      ['dir with space', 'dir'],
      ['latest', 'link'],
      [' leading space.txt', 'file'],
      ['ünïcödé-雨 Nov 20 10:02.txt', 'file'],
    ]);
    expect(entries[1]?.linkTarget).toBe('2026/11/20/a.bufr');
  });

  it('accepts listings without a group, with ACL markers and with numeric owners', () => {
    const text = [
      '-rw-r--r-- ftp 55 Nov 20 10:00 nogroup.txt',
      '-rw-r--r--+ 1 0 0 56 Nov 20 10:00 acl.txt',
      '-rw-r--r--@ 1 owner staff 57 Nov 20 10:00 mac.txt',
    ].join('\n');
    const { entries, unparsed } = parseList(text, utc);
    expect(unparsed).toEqual([]);
    expect(entries.map((e) => [e.name, e.sizeBytes])).toEqual([
      ['nogroup.txt', 55],
      ['acl.txt', 56],
      ['mac.txt', 57],
    ]);
  });

  it('applies the source timezone to LIST times, including DST', () => {
    const paris = { timezone: 'Europe/Paris', nowMs: NOW };
    const { entries } = parseList(
      ['-rw-r--r-- 1 a b 1 Nov 22 05:16 winter', '-rw-r--r-- 1 a b 1 Jul 14 12:00 summer'].join('\n'),
      paris,
    );
    expect(entries[0]?.mtimeMs).toBe(Date.UTC(2026, 10, 22, 4, 16));
    expect(entries[1]?.mtimeMs).toBe(Date.UTC(2026, 6, 14, 10, 0));
  });

  it('parses long-iso and full-iso time styles', () => {
    const text = [
      '-rw-r--r-- 1 a b 5 2026-11-22 05:16 iso.txt',
      '-rw-r--r-- 1 a b 6 2026-11-22 05:16:33.123456789 +0100 full.txt',
    ].join('\n');
    const { entries } = parseList(text, utc);
    expect(entries[0]).toMatchObject({
      name: 'iso.txt',
      mtimeMs: Date.UTC(2026, 10, 22, 5, 16),
      mtimePrecision: 'minute',
    });
    expect(entries[1]).toMatchObject({
      name: 'full.txt',
      mtimeMs: Date.UTC(2026, 10, 22, 4, 16, 33),
      mtimePrecision: 's',
    });
  });

  it('skips lines it does not understand, without throwing', () => {
    const text = [
      'garbage line',
      '-rw-r--r-- 1 a b notanumber Nov 22 05:16 x',
      '-rw-r--r-- 1 a b 12 Foo 22 05:16 y',
      '',
      '-rw-r--r-- 1 a b 12 Nov 22 05:16 ok',
    ].join('\n');
    const { entries, unparsed } = parseList(text, utc);
    expect(entries.map((e) => e.name)).toEqual(['ok']);
    expect(unparsed).toHaveLength(3);
  });

  it('survives hostile input: overlong lines, digit runs, control characters, only whitespace', () => {
    const longName = `-rw-r--r-- 1 a b 1 Nov 22 05:16 ${'x'.repeat(1000)}`;
    const overlong = `-rw-r--r-- 1 a b 1 Nov 22 05:16 ${'x'.repeat(100_000)}`;
    const digits = `-rw-r--r-- ${'1 '.repeat(4000)}`;
    const { entries, unparsed } = parseList(`${longName}\n${overlong}\n${digits}\n\t\u0000\u0007\n   \n`, utc);
    expect(entries.map((e) => e.name.length)).toEqual([1000]);
    expect(unparsed).toHaveLength(3);
  });
});

describe('parseList: DOS format', () => {
  it('parses files and <DIR> entries, 12-hour clock, 2- and 4-digit years', () => {
    const text = [
      '11-22-25  05:16AM       <DIR>          radar dir',
      '11-22-25  12:05PM                 1234 file one.bufr',
      '11-22-2025  12:30AM                 5 midnight.txt',
      '01-02-2026  17:45                   7 h24.txt',
    ].join('\r\n');
    const { entries, unparsed } = parseList(text, utc);
    expect(unparsed).toEqual([]);
    expect(entries).toEqual([
      {
        name: 'radar dir',
        type: 'dir',
        sizeBytes: 0,
        mtimeMs: Date.UTC(2025, 10, 22, 5, 16),
        mtimePrecision: 'minute',
      },
      {
        name: 'file one.bufr',
        type: 'file',
        sizeBytes: 1234,
        mtimeMs: Date.UTC(2025, 10, 22, 12, 5),
        mtimePrecision: 'minute',
      },
      {
        name: 'midnight.txt',
        type: 'file',
        sizeBytes: 5,
        mtimeMs: Date.UTC(2025, 10, 22, 0, 30),
        mtimePrecision: 'minute',
      },
      { name: 'h24.txt', type: 'file', sizeBytes: 7, mtimeMs: Date.UTC(2026, 0, 2, 17, 45), mtimePrecision: 'minute' },
    ]);
  });
});

describe('parseMlsd', () => {
  it('parses facts, skips cdir/pdir, keeps names with spaces and semicolons', () => {
    const text = [
      'type=cdir;modify=20261122051600;perm=flcdmpe; .',
      'type=pdir;modify=20261122051600;perm=flcdmpe; ..',
      'type=file;size=1234;modify=20261122051633;UNIX.mode=0644; radar; file.bufr',
      'type=dir;modify=20261122051600;perm=flcdmpe; sub dir',
      'Type=File;Size=5;Modify=20261122051633.250; upper.txt',
      'type=OS.unix=slink:/data/target;size=10;modify=20261122051633; link',
    ].join('\r\n');
    const { entries, unparsed, lineCount } = parseMlsd(text);
    expect(unparsed).toEqual([]);
    expect(lineCount).toBe(6);
    expect(entries).toEqual([
      {
        name: 'radar; file.bufr',
        type: 'file',
        sizeBytes: 1234,
        mtimeMs: Date.UTC(2026, 10, 22, 5, 16, 33),
        mtimePrecision: 's',
      },
      { name: 'sub dir', type: 'dir', sizeBytes: 0, mtimeMs: Date.UTC(2026, 10, 22, 5, 16, 0), mtimePrecision: 's' },
      {
        name: 'upper.txt',
        type: 'file',
        sizeBytes: 5,
        mtimeMs: Date.UTC(2026, 10, 22, 5, 16, 33, 250),
        mtimePrecision: 'ms',
      },
      {
        name: 'link',
        type: 'link',
        sizeBytes: 10,
        mtimeMs: Date.UTC(2026, 10, 22, 5, 16, 33),
        mtimePrecision: 's',
        linkTarget: '/data/target',
      },
    ]);
  });

  it('reports lines without facts or of unknown types as unparsed', () => {
    const { entries, unparsed } = parseMlsd(
      'nonsense\ntype=weird;modify=20261122051633; w\ntype=file;modify=2026; short',
    );
    expect(entries).toEqual([]);
    expect(unparsed).toHaveLength(3);
  });

  it('keeps an entry without a modify fact with its time unknown (the lister asks MDTM)', () => {
    const { entries, unparsed } = parseMlsd('type=file;size=1; nomodify\ntype=file; nosize');
    expect(unparsed).toEqual([]);
    expect(entries).toEqual([
      { name: 'nomodify', type: 'file', sizeBytes: 1, mtimeMs: undefined, mtimePrecision: 's' },
      { name: 'nosize', type: 'file', sizeBytes: undefined, mtimeMs: undefined, mtimePrecision: 's' },
    ]);
  });
});

describe('time helpers', () => {
  it('parses MDTM/MLSD times', () => {
    expect(parseMlsdTime('20261122051633')).toEqual({ ms: Date.UTC(2026, 10, 22, 5, 16, 33), precision: 's' });
    expect(parseMlsdTime('2026112205163')).toBeUndefined();
  });

  it('converts wall-clock times of an IANA zone, across DST changes', () => {
    // New York: EST (-5) in winter, EDT (-4) in summer.
    expect(zonedTimeToUtcMs(2026, 1, 15, 12, 0, 0, 'America/New_York')).toBe(Date.UTC(2026, 0, 15, 17, 0));
    expect(zonedTimeToUtcMs(2026, 7, 15, 12, 0, 0, 'America/New_York')).toBe(Date.UTC(2026, 6, 15, 16, 0));
    // 2026-11-01 01:30 happens twice in New York: the earlier (EDT) instant is taken.
    expect(zonedTimeToUtcMs(2026, 11, 1, 1, 30, 0, 'America/New_York')).toBe(Date.UTC(2026, 10, 1, 5, 30));
    expect(zonedTimeToUtcMs(2026, 3, 10, 8, 0, 0, 'Asia/Kolkata')).toBe(Date.UTC(2026, 2, 10, 2, 30));
  });

  it('reads many LIST times in odd zones exactly as the one-off conversion does (offset cache)', () => {
    const zones = ['Europe/Paris', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kathmandu', 'Pacific/Chatham'];
    let seed = 42;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (const timezone of zones) {
      const wall = Array.from({ length: 300 }, () => ({
        mo: 1 + random(12),
        d: 1 + random(28),
        h: random(24),
        mi: random(60),
      }));
      const text = wall
        .map(({ mo, d, h, mi }, i) => {
          const pad = (n: number): string => String(n).padStart(2, '0');
          return `-rw-r--r-- 1 a b 1 2026-${pad(mo)}-${pad(d)} ${pad(h)}:${pad(mi)} f${i}`;
        })
        .join('\n');
      const { entries } = parseList(text, { timezone, nowMs: NOW });
      expect(entries.map((e) => e.mtimeMs)).toEqual(
        wall.map(({ mo, d, h, mi }) => zonedTimeToUtcMs(2026, mo, d, h, mi, 0, timezone)),
      );
    }
  });

  it('flags round entry counts as a probable server cap', () => {
    expect(looksTruncated(2000)).toBe(true);
    expect(looksTruncated(1999)).toBe(false);
    expect(looksTruncated(0)).toBe(false);
  });
});

describe('parseList: lines met in the field', () => {
  const one = (line: string) => parseList(line, utc);

  it('cuts the name after a left-aligned year as ls pads it, keeps blanks after a right-aligned one', () => {
    expect(one('-rw-r--r--   1 20708    205         3553312 Feb 18 2005  D3I0_515.fmr').entries[0]?.name).toBe(
      'D3I0_515.fmr',
    );
    expect(one('-rwxr-xr-x    3 110      1002            1234567 Dec 02  2009  foo bar ').entries[0]?.name).toBe(
      ' foo bar ',
    );
    expect(one('drwxr-xr-x   2 john smith     group         4096 Mar  2 15:13   zxbox').entries[0]?.name).toBe(
      '  zxbox',
    );
  });

  it('refuses impossible dates and sizes that are no number instead of rolling them over', () => {
    for (const line of [
      '99-25-10  12:00AM                  0 months out of range',
      '12-25-10  12:99AM                  0 minutes',
      'drwxr-xr-x   2 root     root         4096 Aug 36  2001 zztpp',
      '-rw-r--r--   1 14       staff      119:26 Aug 22  2000 zxJDBC-1.2.3.zip',
      'drwxrwxrwx 2 root root  4096 2012-30-07 00:31 notas_servico',
    ]) {
      const r = one(line);
      expect(r.entries, line).toEqual([]);
      expect(r.unparsed, line).toEqual([line]);
    }
  });

  it('reads the ISO IIS variant, a name ending in a carriage return, and blanks before the mode', () => {
    expect(one('2002-09-02  19:06                9,730 19-dos-longyear file').entries[0]).toMatchObject({
      name: '19-dos-longyear file',
      sizeBytes: 9730,
      mtimeMs: Date.UTC(2002, 8, 2, 19, 6),
    });
    expect(one('drwxr--r--   1 user     group          0 Feb 14 18:14 Icon\r').entries[0]?.name).toBe('Icon\r');
    expect(one('    -rw-r--r--+   1 patrick  staff   1057 Dec 11 14:35 LICENSE.txt').entries[0]?.name).toBe(
      'LICENSE.txt',
    );
  });

  it('reads localized month names and day-first dates', () => {
    const lines = [
      'dr-xr-xr-x   2 root     other      2235 26. Juli, 20:10 de',
      '-rwxrwxr-x 1 ftp ftp 123 23 май 2011 ru',
      '-rw-r--r-- 1 ftp ftp 5 12 déc. 2024 fr',
      '-rw-r--r-- 1 ftp ftp 5 mrt 3 2024 nl',
      '-rw-r--r-- 1 ftp ftp 5 ago 4 2024 es',
      '-rw-r--r-- 1 ftp ftp 5 set 5 2024 pt',
      '-rw-r--r-- 1 ftp ftp 5 giu 6 2024 it',
      '-rw-r--r-- 1 ftp ftp 5 maj 7 2024 sv',
      '-rw-rw---- 1 ep1adm sapsys 0 8月 17日 20:10 ja',
    ];
    const { entries, unparsed } = parseList(lines.join('\n'), utc);
    expect(unparsed).toEqual([]);
    expect(entries.map((e) => `${e.name} ${new Date(e.mtimeMs ?? 0).toISOString().slice(5, 10)}`)).toEqual([
      'de 07-26',
      'ru 05-23',
      'fr 12-12',
      'nl 03-03',
      'es 08-04',
      'pt 09-05',
      'it 06-06',
      'sv 05-07',
      'ja 08-17',
    ]);
  });

  it('leaves a size that is no byte count (33.5k, VMS blocks) and a date that could be either order unknown', () => {
    expect(one('-rw-r--r--   1 root     other  33.5k Oct 5 21:22 suffixed').entries[0]).toMatchObject({
      sizeBytes: undefined,
    });
    expect(one('-r-xr-xr-x   2 root     other      2235 04-10-2003 17:12 either').entries[0]).toMatchObject({
      mtimeMs: undefined,
    });
    const vms = parseList(
      'A.B;2  12/16  2-JUN-1998 07:32:04 [G,O] (RWED,RWED,RE,)\nA.B;3  12/16  2-JUN-1998 07:35:00 [G,O] (RWED,RWED,RE,)',
      utc,
    );
    expect(vms.entries).toEqual([
      {
        name: 'A.B',
        type: 'file',
        sizeBytes: undefined,
        mtimeMs: Date.UTC(1998, 5, 2, 7, 35),
        mtimePrecision: 's',
        version: 3,
      },
    ]);
  });

  it('reads a DOS listing day-first when one of its dates says so, EPLF, OS/2', () => {
    const dos = parseList('20-05-97  03:31PM  681 a\n01-02-97  03:31PM  681 b', utc);
    expect(dos.entries.map((e) => new Date(e.mtimeMs ?? 0).toISOString().slice(0, 10))).toEqual([
      '1997-05-20',
      '1997-02-01',
    ]);
    expect(one('+i8388621.48594,m825718503,r,s280,up755\t14-eplf file').entries[0]).toMatchObject({
      name: '14-eplf file',
      sizeBytes: 280,
      mtimeMs: 825718503000,
    });
    expect(one('36611      A    04-23-103  10:57  24-os2 file').entries[0]).toMatchObject({
      name: '24-os2 file',
      mtimeMs: Date.UTC(2003, 3, 23, 10, 57),
    });
  });

  it('reads MLSD names after a tab, and resolves OS.unix=symlink targets through the unique fact', () => {
    expect(parseMlsd('size=1;type=file;modify=20090722092510;\tadsl TV 2009').entries[0]?.name).toBe('adsl TV 2009');
    const r = parseMlsd('type=OS.unix=symlink;unique=1234; link\ntype=file;unique=1234; /actual/target');
    expect(r.entries).toEqual([
      {
        name: 'link',
        type: 'link',
        sizeBytes: undefined,
        mtimeMs: undefined,
        mtimePrecision: 's',
        linkTarget: '/actual/target',
      },
    ]);
  });
});
