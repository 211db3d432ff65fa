/** Media types of the files weather services exchange, by extension (WNM link `type`). */
const BY_EXTENSION: Readonly<Record<string, string>> = {
  bufr: 'application/bufr',
  bufr4: 'application/bufr',
  bin: 'application/octet-stream',
  grib: 'application/grib',
  grib2: 'application/grib',
  grb2: 'application/grib',
  h5: 'application/x-hdf5',
  hdf5: 'application/x-hdf5',
  hdf: 'application/x-hdf5',
  nc: 'application/netcdf',
  json: 'application/json',
  geojson: 'application/geo+json',
  xml: 'application/xml',
  txt: 'text/plain',
  csv: 'text/csv',
  png: 'image/png',
  gz: 'application/gzip',
};

export function mediaTypeOf(path: string): string {
  const dot = path.lastIndexOf('.');
  if (dot < 0 || dot < path.lastIndexOf('/')) return 'application/octet-stream';
  return BY_EXTENSION[path.slice(dot + 1).toLowerCase()] ?? 'application/octet-stream';
}
