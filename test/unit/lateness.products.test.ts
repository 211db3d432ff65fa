import { describe, expect, it } from 'vitest';
import { expectRuleSchema } from '../../src/config/expect.js';
import { compileExpectRule, matchProduct } from '../../src/lateness/rules.js';
import { createLatenessTracker } from '../../src/lateness/tracker.js';

const MIN = 60_000;
const T0 = Date.parse('2026-11-23T06:00:00Z');
const rule = (r: Record<string, unknown>) => compileExpectRule(expectRuleSchema.parse(r));

describe('expect: rules', () => {
  it('key products by the named groups of a pattern, or name one product by a glob', () => {
    const radars = rule({ pattern: '^radar/(?<radar>[A-Z]+)/', every: '5m', grace: '2m' });
    const synop = rule({ glob: 'obs/**/SYNOP_*.bufr', product: 'synop', every: '15m' });
    const rules = [radars, synop];
    expect(matchProduct(rules, 'radar/ARBAR/2026/11/23/ARBAR_DBZH_202611230600.bufr')?.product).toBe('ARBAR');
    expect(matchProduct(rules, 'obs/2026/11/23/SYNOP_202611230600.bufr')?.product).toBe('synop');
    expect(matchProduct(rules, 'README.txt')).toBeUndefined();
    expect(radars.everyMs).toBe(5 * MIN);
    expect(radars.graceMs).toBe(2 * MIN);
    const templated = rule({
      pattern: '(?<radar>[A-Z]+)_(?<moment>[A-Z]+)_',
      product: '{radar}-{moment}',
      every: '5m',
    });
    expect(templated.productOf('x/ARBAR_DBZH_1.bufr')).toBe('ARBAR-DBZH');
  });

  it('refuses rules with one clear line each', () => {
    const problems = (r: Record<string, unknown>) =>
      expectRuleSchema.safeParse(r).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];
    expect(problems({ every: '5m' })).toEqual([': give either `glob` or `pattern`, not both or neither']);
    expect(problems({ pattern: 'radar/[A-Z]+/', every: '5m' })[0]).toMatch(/needs a named group/);
    expect(problems({ pattern: '(?<radar>[A-Z]+)', product: '{site}', every: '5m' })[0]).toMatch(
      /\{site\} is not a named group/,
    );
    expect(problems({ pattern: '(?<radar>[A-Z+', every: '5m' })[0]).toMatch(/not a regular expression/);
    expect(problems({ glob: '*.bufr', every: 'soon' })[0]).toMatch(/^every/);
  });
});

describe('the lateness tracker', () => {
  const rules = new Map([
    ['demo', [rule({ pattern: '^radar/(?<radar>[A-Z]+)/', every: '5m', grace: '1m', products: ['ARBAR', 'ARPAR'] })]],
  ]);

  it('flags the silent product only, after its cadence plus grace, and reports the recovery once', () => {
    const t = createLatenessTracker(rules, T0);
    expect(t.evaluate(T0).products.map((p) => `${p.product}:${p.state}`)).toEqual(['ARBAR:waiting', 'ARPAR:waiting']);
    t.fileFetched('demo', 'radar/ARBAR/a.bufr', T0 + MIN);
    t.fileFetched('demo', 'radar/ARPAR/a.bufr', T0 + MIN);
    expect(t.evaluate(T0 + 2 * MIN).transitions).toEqual([]);
    // ARBAR keeps coming, ARPAR stops.
    t.fileFetched('demo', 'radar/ARBAR/b.bufr', T0 + 6 * MIN);
    const at7 = t.evaluate(T0 + 7 * MIN);
    expect(at7.products.map((p) => `${p.product}:${p.state}`)).toEqual(['ARBAR:on-time', 'ARPAR:on-time']);
    const at7m30 = t.evaluate(T0 + 7 * MIN + 30_000);
    expect(at7m30.transitions.map((x) => `${x.product}:${x.state}`)).toEqual(['ARPAR:late']);
    expect(at7m30.products.find((p) => p.product === 'ARBAR')?.state).toBe('on-time');
    // No repeat while it stays late.
    expect(t.evaluate(T0 + 8 * MIN).transitions).toEqual([]);
    // An old backfilled file does not count; a new one does.
    t.fileFetched('demo', 'radar/ARPAR/old.bufr', T0 - 60 * MIN);
    expect(t.evaluate(T0 + 9 * MIN).transitions).toEqual([]);
    t.fileFetched('demo', 'radar/ARPAR/c.bufr', T0 + 9 * MIN);
    expect(t.evaluate(T0 + 9 * MIN).transitions.map((x) => `${x.product}:${x.state}`)).toEqual(['ARPAR:on-time']);
  });

  it('makes a declared product never seen late once the process has been up for cadence plus grace', () => {
    const t = createLatenessTracker(rules, T0);
    t.fileFetched('demo', 'radar/ARBAR/a.bufr', T0 + 5 * MIN);
    const r = t.evaluate(T0 + 6 * MIN + 1);
    expect(r.products.map((p) => `${p.product}:${p.state}`)).toEqual(['ARBAR:on-time', 'ARPAR:late']);
    expect(r.transitions.map((x) => x.product)).toEqual(['ARPAR']);
  });

  it('keeps what it saw across a reload that keeps the rule, and drops products of a removed rule', () => {
    const t = createLatenessTracker(rules, T0);
    t.fileFetched('demo', 'radar/ARBAR/a.bufr', T0);
    t.fileFetched('demo', 'radar/XXXXX/a.bufr', T0);
    t.setRules(
      new Map([['demo', [rule({ pattern: '^radar/(?<radar>AR[A-Z]+)/', every: '10m', products: ['ARBAR'] })]]]),
    );
    const r = t.evaluate(T0 + 7 * MIN);
    expect(r.products.map((p) => `${p.product}:${p.state}:${p.everyMs}`)).toEqual([`ARBAR:on-time:${10 * MIN}`]);
    t.setRules(new Map());
    expect(t.evaluate(T0 + 7 * MIN).products).toEqual([]);
  });
});

describe('the lateness watch on its clock', () => {
  it('reads what other instances landed before each evaluation, so their share is not late', async () => {
    const { startLatenessWatch } = await import('../../src/lateness/watch.js');
    const pino = (await import('pino')).default;
    const t0 = Date.now();
    const sources = [
      {
        name: 'r',
        enabled: true,
        expect: [{ pattern: '^radar/(?<radar>[A-Z]+)/', products: ['ARBAR', 'ARPAR'], every: 1000, grace: 1000 }],
      },
    ];
    const transitions: string[] = [];
    let other = 0;
    let othersLanding = true;
    const asked: string[][] = [];
    const watch = startLatenessWatch({
      sources,
      startedAtMs: t0,
      log: pino({ level: 'silent' }),
      onTransition: (t) => transitions.push(`${t.product} ${t.state}`),
      // Another instance keeps landing ARPAR; this one lands ARBAR itself.
      refresh: async (names) => {
        asked.push([...names]);
        if (!othersLanding) return;
        const now = Date.now();
        other += 1;
        watch.seed([
          {
            source: 'r',
            path: `radar/ARPAR/${other}.bufr`,
            mtimeMs: now,
            updatedMs: now,
            state: 'processed',
            stage: null,
          },
        ] as never);
      },
    });
    try {
      const until = Date.now() + 4000;
      while (Date.now() < until) {
        watch.fileFetched('r', `radar/ARBAR/${Date.now()}.bufr`, Date.now());
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(asked.length).toBeGreaterThan(2);
      expect(asked[0]).toEqual(['r']);
      expect(transitions).toEqual([]);
      expect(watch.evaluate().map((p) => [p.product, p.state])).toEqual([
        ['ARBAR', 'on-time'],
        ['ARPAR', 'on-time'],
      ]);
      // The other instance stops: ARPAR, and only it, goes late.
      othersLanding = false;
      const until2 = Date.now() + 5000;
      while (Date.now() < until2 && !transitions.includes('ARPAR late')) {
        watch.fileFetched('r', `radar/ARBAR/${Date.now()}.bufr`, Date.now());
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(transitions).toEqual(['ARPAR late']);
    } finally {
      watch.stop();
    }
  }, 15_000);
});
