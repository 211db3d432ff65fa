import { describe, expect, it } from 'vitest';
import { epsvPort, pasvPort } from '../../src/sources/ftp/retrieve.js';

describe('passive replies read without a regular expression', () => {
  it('reads the EPSV port, with | or ! as the delimiter', () => {
    expect(epsvPort('229 Entering Extended Passive Mode (|||6446|)')).toBe(6446);
    expect(epsvPort('229 Entering Extended Passive Mode (!!!30001!)')).toBe(30001);
    expect(epsvPort('229 EPSV ok (|||65535|)')).toBe(65535);
  });

  it('gives no EPSV port for a garbled or out-of-range reply (the caller falls back)', () => {
    expect(epsvPort('229 Entering Extended Passive Mode')).toBeUndefined();
    expect(epsvPort('229 (|||x|)')).toBeUndefined();
    expect(epsvPort('229 (|||0|)')).toBeUndefined();
    expect(epsvPort('229 (|||70000|)')).toBeUndefined();
    expect(epsvPort(`229 (|||${'9'.repeat(100_000)}|)`)).toBeUndefined();
  });

  it('reads the PASV port from the last two numbers in parentheses', () => {
    expect(pasvPort('227 Entering Passive Mode (192,168,1,100,10,229)')).toBe(10 * 256 + 229);
    expect(pasvPort('227 Entering Passive Mode (127,0,0,1,117,48).')).toBe(117 * 256 + 48);
  });

  it('gives no PASV port for other shapes or bytes out of range', () => {
    expect(pasvPort('227 =127,0,0,1,117,48')).toBeUndefined();
    expect(pasvPort('227 Entering Passive Mode (127,0,0,1,256,1)')).toBeUndefined();
    expect(pasvPort('227 Entering Passive Mode (127,0,0,1,a,1)')).toBeUndefined();
    expect(pasvPort('227 Entering Passive Mode (0,0)')).toBeUndefined();
  });
});
