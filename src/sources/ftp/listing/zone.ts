/**
 * Wall-clock times in an IANA zone to UTC, for listings that write local times (LIST, HTTP
 * index pages). No I/O, no clock.
 */

const formatterCache = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatterCache.get(timeZone);
  if (formatter === undefined) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatterCache.set(timeZone, formatter);
  }
  return formatter;
}

interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

function zonedParts(utcMs: number, timeZone: string): WallClock {
  const wall: WallClock = { year: 1970, month: 1, day: 1, hour: 0, minute: 0, second: 0 };
  for (const part of formatterFor(timeZone).formatToParts(new Date(utcMs))) {
    if (part.type === 'year' || part.type === 'month' || part.type === 'day') wall[part.type] = Number(part.value);
    else if (part.type === 'hour' || part.type === 'minute' || part.type === 'second')
      wall[part.type] = Number(part.value);
  }
  return wall;
}

function zonedYear(utcMs: number, timeZone: string): number {
  if (isUtc(timeZone)) return new Date(utcMs).getUTCFullYear();
  return zonedParts(utcMs, timeZone).year;
}

/** Offset of `timeZone` from UTC at the instant `utcMs`, in ms (east positive). */
export function zoneOffsetMs(utcMs: number, timeZone: string): number {
  if (isUtc(timeZone)) return 0;
  const p = zonedParts(utcMs, timeZone);
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return asUtc - (utcMs - (((utcMs % 1000) + 1000) % 1000));
}

/**
 * The UTC instant of a wall-clock time in an IANA zone. In a DST gap the time is read with the
 * offset before the change; in an overlap the earlier instant wins.
 */
export function zonedTimeToUtcMs(
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
  timeZone: string,
): number {
  const wall = Date.UTC(year, month - 1, day, hour, minute, second);
  if (!Number.isFinite(wall) || isUtc(timeZone)) return wall;
  const first = wall - zoneOffsetMs(wall, timeZone);
  const secondOffset = zoneOffsetMs(first, timeZone);
  const candidate = wall - secondOffset;
  // In an overlap both instants show this wall time: prefer the earlier one.
  const earlier = Math.min(first, candidate);
  return wall - zoneOffsetMs(earlier, timeZone) === earlier ? earlier : Math.max(first, candidate);
}

function isUtc(timeZone: string): boolean {
  return timeZone === 'UTC' || timeZone === 'Etc/UTC' || timeZone === 'GMT';
}

/** Wall-clock to UTC conversion for one listing, with the zone offsets it needed remembered. */
export interface ZoneConverter {
  /** The current year in the zone, for year-less dates. */
  readonly nowYear: number;
  toUtcMs(year: number, month: number, day: number, hour: number, minute: number, second: number): number;
}

/**
 * Intl is slow (a formatToParts call per conversion): a 100k-line listing would spend seconds in
 * it. Offsets only change at DST transitions, which fall on quarter hours, so one offset per
 * wall-clock quarter hour serves every line in it.
 */
export function makeZoneConverter(timeZone: string, nowMs: number): ZoneConverter {
  const offsets = new Map<string, number>();
  return {
    nowYear: zonedYear(nowMs, timeZone),
    toUtcMs(year, month, day, hour, minute, second) {
      const wall = Date.UTC(year, month - 1, day, hour, minute, second);
      if (!Number.isFinite(wall) || isUtc(timeZone)) return wall;
      const quarter = Math.floor(minute / 15) * 15;
      const key = `${year}-${month}-${day}-${hour}-${quarter}`;
      let offset = offsets.get(key);
      if (offset === undefined) {
        const slotWall = Date.UTC(year, month - 1, day, hour, quarter, 0);
        offset = slotWall - zonedTimeToUtcMs(year, month, day, hour, quarter, 0, timeZone);
        offsets.set(key, offset);
      }
      return wall - offset;
    },
  };
}

/** Throws a RangeError when `timeZone` is not an IANA zone this runtime knows. */
export function assertTimeZone(timeZone: string): void {
  new Intl.DateTimeFormat('en-US', { timeZone });
}
