/** Text dump, summary and JSON document of a decode result. */
import type { BufrEntry, DecodedMessage, DecodeResult, FailedMessage } from '../decoder/index.js';
import { toNestedJson } from '../decoder/index.js';
import type { RadarSweep } from '../decoder/radar.js';

function fmtValue(e: BufrEntry): string {
  if (e.bytes) return `<${e.bytes.length} bytes>`;
  if (e.value === null) return 'MISSING';
  if (typeof e.value === 'string') return JSON.stringify(e.value);
  return String(e.value);
}

function time(m: DecodedMessage | FailedMessage): string {
  const t = m.header?.typicalTime;
  if (!t) return '?';
  const p = (n: number) => String(n).padStart(2, '0');
  return `${t.year}-${p(t.month)}-${p(t.day)}T${p(t.hour)}:${p(t.minute)}:${p(t.second)}Z`;
}

function headerLine(m: DecodedMessage | FailedMessage): string {
  const h = m.header;
  if (!h) return `message ${m.number + 1} at byte ${m.offset}`;
  return (
    `message ${m.number + 1} at byte ${m.offset}: edition ${h.edition}, centre ${h.centre}/${h.subCentre}, ` +
    `category ${h.dataCategory}, master table ${h.masterTablesVersion}, local table ${h.localTablesVersion}, ` +
    `${h.numberOfSubsets} subset(s)${h.compressed ? ' compressed' : ''}, time ${time(m)}`
  );
}

/** Line-by-line dump of every value. */
export function formatDump(result: DecodeResult, write: (line: string) => void): void {
  for (const m of result.messages) {
    write(headerLine(m));
    if (!m.ok) {
      write(`  error ${m.error.code}: ${m.error.message}`);
      continue;
    }
    write(`  descriptors ${m.header.descriptors.map((d) => String(d).padStart(6, '0')).join(' ')}`);
    m.subsets.forEach((entries, s) => {
      write(`  subset ${s + 1}`);
      for (const e of entries) {
        if (e.kind === 'operator') {
          write(`    ${e.descriptor} ${e.name}`);
          continue;
        }
        const unit = e.unit && !/table|CCITT/i.test(e.unit) ? ` ${e.unit}` : '';
        write(`    ${e.descriptor} ${e.key} = ${fmtValue(e)}${e.value === null ? '' : unit}`);
      }
    });
  }
}

function sweepLine(s: RadarSweep, i: number): string {
  const rangeKm = ((s.rangeStartM + s.rangeStepM * s.bins) / 1000).toFixed(1);
  let valid = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const v of s.data) {
    if (Number.isNaN(v) || v === s.nodata || v === s.undetect) continue;
    valid++;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const range = valid > 0 ? ` min ${min.toFixed(2)} max ${max.toFixed(2)}` : '';
  return (
    `  sweep ${i}: ${s.quantity} elevation ${s.elevationDeg} deg, ${s.rays} rays x ${s.bins} bins of ${s.rangeStepM} m ` +
    `(from ${s.rangeStartM} m, to ${rangeKm} km), ${s.startTime} - ${s.endTime}, ${valid} valid${range}`
  );
}

/** Short summary: one header line per message, radar sweeps, errors. */
export function formatSummary(result: DecodeResult, write: (line: string) => void): void {
  const ok = result.messages.filter((m) => m.ok).length;
  write(`${result.messages.length} message(s), ${ok} decoded, ${result.messages.length - ok} failed`);
  for (const m of result.messages) {
    write(headerLine(m));
    if (!m.ok) {
      write(`  error ${m.error.code}: ${m.error.message}`);
      continue;
    }
    const values = m.subsets.reduce((a, s) => a + s.length, 0);
    write(`  ${values} values; tables: ${m.tables.label}`);
    if (m.radarError) write(`  radar error ${m.radarError.code}: ${m.radarError.message}`);
    if (m.radar) {
      const r = m.radar;
      write(
        `  radar ${r.stationType ?? ''} ${r.station ?? ''} at ${r.latitudeDeg}, ${r.longitudeDeg}, ${r.heightM} m; ${r.sweeps.length} sweep(s)`,
      );
      r.sweeps.forEach((s, i) => {
        write(sweepLine(s, i));
      });
    }
  }
}

/** Options for {@link toJsonDocument}. */
export interface JsonDocumentOptions {
  /** Include the nested (tree) form of every subset. @default false */
  nested?: boolean;
  /** Name of the `.npy` file written for sweep i, recorded in the document. */
  sweepFile?: (sweep: number) => string;
}

/** A JSON-serialisable document of a decode result (byte runs and sweep arrays replaced by sizes). */
export function toJsonDocument(result: DecodeResult, file: string, opts: JsonDocumentOptions = {}): unknown {
  return {
    file,
    messages: result.messages.map((m) => {
      if (!m.ok)
        return {
          number: m.number,
          offset: m.offset,
          ok: false,
          header: m.header ?? null,
          error: { code: m.error.code, message: m.error.message },
        };
      return {
        number: m.number,
        offset: m.offset,
        ok: true,
        header: m.header,
        tables: m.tables,
        // Compressed messages share one element list: write it once with a value per subset
        // (a single value when all subsets agree), like ecCodes does.
        ...(m.header.compressed
          ? {
              elements: m.items[0]!.map((it) => {
                const first = it.vals[0] ?? null;
                const same = it.vals.every((v) => v === first);
                return {
                  descriptor: String(it.code).padStart(6, '0'),
                  key: it.def.key,
                  name: it.def.name,
                  unit: it.def.unit,
                  ...(same ? { value: first } : { values: it.vals }),
                  ...(it.kind !== 'element' ? { kind: it.kind } : {}),
                };
              }),
            }
          : {
              subsets: m.subsets.map((entries) =>
                entries.map((e) => ({
                  descriptor: e.descriptor,
                  key: e.key,
                  name: e.name,
                  unit: e.unit,
                  value: e.bytes ? null : e.value,
                  ...(e.bytes ? { bytes: e.bytes.length } : {}),
                  ...(e.kind !== 'element' ? { kind: e.kind } : {}),
                })),
              ),
            }),
        ...(m.radarError ? { radarError: { code: m.radarError.code, message: m.radarError.message } } : {}),
        ...(opts.nested ? { nested: m.subsets.map((_, s) => toNestedJson(m, s)) } : {}),
        ...(m.radar
          ? {
              radar: {
                ...m.radar,
                sweeps: m.radar.sweeps.map(({ data, compressed, ...rest }, i) => ({
                  ...rest,
                  values: data.length,
                  ...(opts.sweepFile ? { file: opts.sweepFile(i) } : {}),
                })),
              },
            }
          : {}),
      };
    }),
  };
}
