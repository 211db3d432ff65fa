import { describe, expect, it } from 'vitest';
import {
  describeProxy,
  matchesNoProxy,
  parseProxyUrl,
  proxyFromEnvironment,
  resolveProxy,
} from '../../src/sources/proxy/proxy-settings.js';

describe('parseProxyUrl', () => {
  it('reads http, https, socks5 and socks5h URLs, with curl defaults for the port', () => {
    expect(parseProxyUrl('http://proxy.example:3128', 'x')).toMatchObject({ protocol: 'http', port: 3128 });
    expect(parseProxyUrl('proxy.example:8080', 'x')).toMatchObject({
      protocol: 'http',
      host: 'proxy.example',
      port: 8080,
    });
    expect(parseProxyUrl('http://proxy.example', 'x')).toMatchObject({ port: 1080 });
    expect(parseProxyUrl('https://proxy.example', 'x')).toMatchObject({ protocol: 'https', port: 443 });
    expect(parseProxyUrl('socks5h://[::1]:1081', 'x')).toMatchObject({ protocol: 'socks5h', host: '::1', port: 1081 });
    expect(parseProxyUrl('socks://p', 'x')).toMatchObject({ protocol: 'socks5h' });
    expect(parseProxyUrl('socks5://u%40x:p%3Aw@p:1', 'x')).toMatchObject({ username: 'u@x', password: 'p:w' });
  });

  it('refuses other schemes and paths with a line that never repeats the password', () => {
    const bad = parseProxyUrl('socks4://user:s3cret@p:1080', 'HTTPS_PROXY');
    expect(bad).toMatch(/^HTTPS_PROXY: proxy scheme "socks4" is not supported/);
    expect(bad).not.toContain('s3cret');
    expect(parseProxyUrl('http://p:1/path', 'x')).toMatch(/remove the path/);
  });

  it('describes a proxy without its credentials', () => {
    const p = parseProxyUrl('http://user:s3cret@[::1]:3128', 'ALL_PROXY');
    if (typeof p === 'string') throw new Error(p);
    expect(describeProxy(p)).toBe('http://[::1]:3128');
  });
});

describe('NO_PROXY as curl reads it', () => {
  const cases: Array<[string, number, string, boolean]> = [
    ['example.com', 21, 'example.com', true],
    ['ftp.example.com', 21, 'example.com', true],
    ['ftp.example.com', 21, '.example.com', true],
    ['ftp.example.com', 21, '*.example.com', true],
    ['notexample.com', 21, 'example.com', false],
    ['example.com.', 21, 'EXAMPLE.com', true],
    ['anything', 443, '*', true],
    ['a.b', 443, 'x.y, a.b', true],
    ['a.b', 443, 'x.y a.b', true],
    ['10.1.2.3', 21, '10.0.0.0/8', true],
    ['11.1.2.3', 21, '10.0.0.0/8', false],
    ['10.1.2.3', 21, '10.1.2.3', true],
    ['::1', 22, '::1', true],
    ['[::1]', 22, '[::1]', true],
    ['fd00::5', 22, 'fd00::/8', true],
    ['fe80::5', 22, 'fd00::/8', false],
    ['example.com', 8080, 'example.com:8080', true],
    ['example.com', 443, 'example.com:8080', false],
    ['127.0.0.1', 21, '[::1]:21,127.0.0.1:21', true],
    ['host.example', 21, '10.0.0.0/8', false],
    ['10.0.0.1', 21, 'example.com', false],
    ['example.com', 21, '', false],
  ];
  for (const [host, port, list, expected] of cases) {
    it(`${host}:${port} vs "${list}" → ${expected ? 'direct' : 'proxied'}`, () => {
      expect(matchesNoProxy(host, port, list)).toBe(expected);
    });
  }
});

describe('proxyFromEnvironment', () => {
  it('takes <scheme>_proxy (lower case first), then ALL_PROXY, unless NO_PROXY matches', () => {
    const env = { https_proxy: 'http://lower:1', HTTPS_PROXY: 'http://upper:1', ALL_PROXY: 'socks5h://all:1' };
    expect(proxyFromEnvironment('https', 'h', 443, env)).toMatchObject({ host: 'lower', from: 'https_proxy' });
    expect(proxyFromEnvironment('https', 'h', 443, { HTTPS_PROXY: 'http://upper:1' })).toMatchObject({
      host: 'upper',
    });
    expect(proxyFromEnvironment('sftp', 'h', 22, env)).toMatchObject({ host: 'all', protocol: 'socks5h' });
    expect(proxyFromEnvironment('ftp', 'h', 21, { all_proxy: 'p:1', ALL_PROXY: 'q:1' })).toMatchObject({ host: 'p' });
    expect(proxyFromEnvironment('ftp', 'h.local', 21, { ...env, NO_PROXY: '.local' })).toBeUndefined();
    expect(proxyFromEnvironment('ftp', 'h', 21, { ...env, no_proxy: '*' })).toBeUndefined();
    expect(proxyFromEnvironment('ftp', 'h', 21, {})).toBeUndefined();
    expect(proxyFromEnvironment('ftp', 'h', 21, { ALL_PROXY: '  ' })).toBeUndefined();
  });

  it("a source's proxy wins over the environment, and `none` means direct", () => {
    const env = { ALL_PROXY: 'socks5://env:1' };
    const own = { protocol: 'http' as const, host: 'own', port: 3128, from: 'proxy' };
    expect(resolveProxy(own, 'ftp', 'h', 21, env)).toBe(own);
    expect(resolveProxy('none', 'ftp', 'h', 21, env)).toBeUndefined();
    expect(resolveProxy(undefined, 'ftp', 'h', 21, env)).toMatchObject({ host: 'env' });
  });
});
