import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { assessVolume, type CompletenessRules, lateMemberAction } from '../../src/volumes/completeness.js';
import { groupVolumes, type VolumeFile, volumeVersion } from '../../src/volumes/group.js';
import { compileKeyPattern, type KeyPattern, matchMember, namedGroupsOf } from '../../src/volumes/key-pattern.js';

const RMA = '(?<radar>RMA\\d+)_(?<strategy>\\d{4})_(?<scan>\\d{2})_(?<moment>[A-Z]+)_(?<time>\\d{8}T\\d{6}Z)\\.BUFR$';
const MOMENTS = ['DBZH', 'KDP', 'VRAD'];

function rma(): KeyPattern {
  const c = compileKeyPattern(RMA, 'moment');
  if (!c.pattern) throw new Error(c.problems.join('; '));
  return c.pattern;
}

const file = (name: string, seenAtMs: number, version = 'v1'): VolumeFile => ({
  path: `in/${name}`,
  version,
  seenAtMs,
});

describe('volume key pattern', () => {
  it('finds named groups and ignores lookbehinds', () => {
    expect(namedGroupsOf('(?<=x)(?<a>\\d)(?<!y)(?<b_2>z)')).toEqual(['a', 'b_2']);
  });

  it('keys a path by every group but the member, in written order', () => {
    const m = matchMember(rma(), 'RMA11_0315_01_DBZH_20251020T152828Z.BUFR');
    expect(m).toEqual({
      key: 'RMA11_0315_01_20251020T152828Z',
      fields: { radar: 'RMA11', strategy: '0315', scan: '01', moment: 'DBZH', time: '20251020T152828Z' },
      member: 'DBZH',
    });
    expect(matchMember(rma(), 'RMA11_0315_01_DBZH_20251020T152828Z.png')).toBeUndefined();
  });

  it('takes an explicit groupBy in its own order', () => {
    const c = compileKeyPattern(RMA, 'moment', ['time', 'radar']);
    expect(c.pattern && matchMember(c.pattern, 'RMA5_0200_02_KDP_20251020T152828Z.BUFR')?.key).toBe(
      '20251020T152828Z_RMA5',
    );
  });

  it('names each mistake with its fix', () => {
    expect(compileKeyPattern('(?<radar>x', 'moment').problems[0]).toMatch(/not a regular expression/);
    expect(compileKeyPattern('(?<radar>RMA\\d+)', 'moment').problems).toEqual([
      'member field "moment" is not a named group of the pattern; add (?<moment>...)',
    ]);
    expect(compileKeyPattern(RMA, 'moment', ['site']).problems).toEqual([
      'groupBy field "site" is not a named group of the pattern; add (?<site>...)',
    ]);
    expect(compileKeyPattern('(?<moment>[A-Z]+)', 'moment').problems).toEqual([
      'the pattern needs at least one named group besides the member to group by',
    ]);
  });

  it('an optional group that did not match leaves the path outside any volume', () => {
    const c = compileKeyPattern('(?<site>[a-z]+)(_(?<scan>\\d+))?_(?<moment>[A-Z]+)', 'moment');
    expect(c.pattern && matchMember(c.pattern, 'abc_DBZH')).toBeUndefined();
    expect(c.pattern && matchMember(c.pattern, 'abc_3_DBZH')?.key).toBe('abc_3');
  });
});

describe('grouping', () => {
  it('groups interleaved members of several volumes, whatever the order', () => {
    const names = [
      'RMA11_0315_01_VRAD_20251020T152828Z.BUFR',
      'RMA5_0315_01_DBZH_20251020T152900Z.BUFR',
      'README.txt',
      'RMA11_0315_01_DBZH_20251020T152828Z.BUFR',
      'RMA5_0315_01_KDP_20251020T152900Z.BUFR',
      'RMA11_0315_01_KDP_20251020T152828Z.BUFR',
    ];
    const forward = groupVolumes(
      rma(),
      names.map((n, i) => file(n, i)),
    );
    const backward = groupVolumes(
      rma(),
      [...names].reverse().map((n, i) => file(n, 100 - i)),
    );
    for (const g of [forward, backward]) {
      expect([...g.keys()].sort()).toEqual(['RMA11_0315_01_20251020T152828Z', 'RMA5_0315_01_20251020T152900Z']);
      expect([...(g.get('RMA11_0315_01_20251020T152828Z')?.members.keys() ?? [])].sort()).toEqual(MOMENTS);
      expect(g.get('RMA5_0315_01_20251020T152900Z')?.fields).toEqual({
        radar: 'RMA5',
        strategy: '0315',
        scan: '01',
        time: '20251020T152900Z',
      });
    }
  });

  it('two files for one member keep the later one', () => {
    const g = groupVolumes(rma(), [
      { path: 'b/RMA1_0001_01_DBZH_20250101T000000Z.BUFR', version: 'x', seenAtMs: 5 },
      { path: 'a/RMA1_0001_01_DBZH_20250101T000000Z.BUFR', version: 'y', seenAtMs: 9 },
    ]);
    expect(g.get('RMA1_0001_01_20250101T000000Z')?.members.get('DBZH')?.path).toBe(
      'a/RMA1_0001_01_DBZH_20250101T000000Z.BUFR',
    );
  });

  it('the volume version changes exactly when a member or a member version changes', () => {
    const names = MOMENTS.map((m) => `RMA1_0001_01_${m}_20250101T000000Z.BUFR`);
    const one = groupVolumes(
      rma(),
      names.map((n, i) => file(n, i)),
    ).get('RMA1_0001_01_20250101T000000Z');
    const sameLater = groupVolumes(
      rma(),
      [...names].reverse().map((n, i) => file(n, 50 + i)),
    ).get('RMA1_0001_01_20250101T000000Z');
    const changed = groupVolumes(
      rma(),
      names.map((n, i) => file(n, i, i === 1 ? 'v2' : 'v1')),
    ).get('RMA1_0001_01_20250101T000000Z');
    const fewer = groupVolumes(
      rma(),
      names.slice(1).map((n, i) => file(n, i)),
    ).get('RMA1_0001_01_20250101T000000Z');
    if (!one || !sameLater || !changed || !fewer) throw new Error('volume missing');
    expect(volumeVersion(one.members)).toBe(volumeVersion(sameLater.members));
    expect(volumeVersion(changed.members)).not.toBe(volumeVersion(one.members));
    expect(volumeVersion(fewer.members)).not.toBe(volumeVersion(one.members));
  });
});

describe('completeness', () => {
  const rules: CompletenessRules = { expect: MOMENTS, minimum: 2, completeAfterMs: 180_000, reopenLate: false };
  const at = (member: string, seenAtMs: number) => ({ member, seenAtMs });

  it('is complete as soon as every expected member is there, quiet time or not', () => {
    const a = assessVolume([at('VRAD', 10), at('DBZH', 0), at('KDP', 20)], rules, 20);
    expect(a).toMatchObject({ state: 'complete', missing: [], firstMemberAtMs: 0, lastMemberAtMs: 20 });
  });

  it('collects until the quiet time after the last member, then is partial', () => {
    const members = [at('DBZH', 0), at('KDP', 60_000)];
    expect(assessVolume(members, rules, 239_999)).toMatchObject({
      state: 'collecting',
      missing: ['VRAD'],
      partialAtMs: 240_000,
      stale: false,
    });
    expect(assessVolume(members, rules, 240_000)).toMatchObject({ state: 'partial', missing: ['VRAD'] });
  });

  it('below the minimum a quiet volume stays collecting and is stale', () => {
    const a = assessVolume([at('DBZH', 0)], rules, 1_000_000);
    expect(a).toMatchObject({ state: 'collecting', stale: true });
    expect(a.partialAtMs).toBeUndefined();
  });

  it('without a quiet time an incomplete volume waits for its members', () => {
    const a = assessVolume([at('DBZH', 0), at('KDP', 0)], { ...rules, completeAfterMs: undefined }, 9e12);
    expect(a).toMatchObject({ state: 'collecting', stale: false });
  });

  it('without an expected list a quiet volume is complete', () => {
    const open = { expect: [], minimum: 1, completeAfterMs: 1000, reopenLate: false };
    expect(assessVolume([at('X', 0)], open, 999).state).toBe('collecting');
    expect(assessVolume([at('X', 0)], open, 1000).state).toBe('complete');
  });

  it('a late member reopens only when configured; a changed member always does', () => {
    const known = new Map([
      ['DBZH', 'v1'],
      ['KDP', 'v1'],
    ]);
    expect(lateMemberAction(known, { member: 'VRAD', version: 'v1' }, { reopenLate: false })).toBe('ignore');
    expect(lateMemberAction(known, { member: 'VRAD', version: 'v1' }, { reopenLate: true })).toBe('reopen');
    expect(lateMemberAction(known, { member: 'KDP', version: 'v1' }, { reopenLate: false })).toBe('ignore');
    expect(lateMemberAction(known, { member: 'KDP', version: 'v2' }, { reopenLate: false })).toBe('reopen');
  });
});

describe('volumes in the config', () => {
  const base = {
    landing: './landing',
    ledger: './ledger.db',
    sources: [{ name: 'rma', url: 'file:///data/rma' }],
  };
  const withVolumes = (volumes: Record<string, unknown>) => ({
    ...base,
    sources: [{ ...base.sources[0], volumes }],
  });
  function issuesOf(raw: unknown): string[] {
    try {
      buildConfig(raw as never, '.');
    } catch (err) {
      if (err instanceof ConfigError) return [...err.issues];
      throw err;
    }
    return [];
  }

  it('compiles the pattern and converts the quiet time', () => {
    const c = buildConfig(
      withVolumes({ pattern: RMA, expect: MOMENTS, minimum: 2, completeAfter: '3m' }) as never,
      '.',
    );
    const v = c.sources[0]?.volumes;
    expect(v?.pattern.groupBy).toEqual(['radar', 'strategy', 'scan', 'time']);
    expect(v?.rules).toEqual({ expect: MOMENTS, minimum: 2, completeAfterMs: 180_000, reopenLate: false });
  });

  it('rejects a pattern without the member group, naming the fix', () => {
    const issues = issuesOf(withVolumes({ pattern: '(?<radar>RMA\\d+)', expect: MOMENTS }));
    expect(issues.join('\n')).toMatch(/volumes\.pattern.*add \(\?<moment>\.\.\.\)/);
  });

  it('rejects a minimum above the expected list and an open list without a quiet time', () => {
    expect(issuesOf(withVolumes({ pattern: RMA, expect: MOMENTS, minimum: 4 })).join('\n')).toMatch(/minimum 4/);
    expect(issuesOf(withVolumes({ pattern: RMA })).join('\n')).toMatch(/set completeAfter/);
  });
});
