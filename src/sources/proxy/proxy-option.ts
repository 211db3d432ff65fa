/**
 * A source's `proxy:` and `proxyCredentialsFile` from the config file, checked: one line per
 * problem, and a password never written in the file itself (it would reach `ps`, logs and the
 * status page through the config).
 */
import { type ProxyChoice, type ProxyCredentials, parseProxyUrl } from './proxy-settings.js';

export interface ProxyOptionResult {
  proxy?: ProxyChoice;
  proxyCredentials?: ProxyCredentials;
}

export function readProxyOption(
  s: { readonly proxy?: string | undefined; readonly proxyCredentialsFile?: string | undefined },
  protocol: string,
  at: string,
  readSecret: (file: string, where: string) => string | undefined,
  issues: string[],
): ProxyOptionResult {
  const out: ProxyOptionResult = {};
  if (protocol === 'file' && (s.proxy !== undefined || s.proxyCredentialsFile !== undefined)) {
    issues.push(`${at}.proxy: a local directory is not reached through a proxy; remove proxy and proxyCredentialsFile`);
    return out;
  }
  if (s.proxy !== undefined) {
    if (s.proxy.trim().toLowerCase() === 'none') out.proxy = 'none';
    else {
      const parsed = parseProxyUrl(s.proxy, `${at}.proxy`);
      if (typeof parsed === 'string') issues.push(parsed);
      else if (parsed.password !== undefined) {
        issues.push(
          `${at}.proxy: the proxy URL contains a password; move user:password to proxyCredentialsFile so it stays out of logs and the process list`,
        );
      } else out.proxy = { ...parsed, from: 'proxy' };
    }
  }
  if (s.proxyCredentialsFile !== undefined) {
    if (out.proxy === 'none') {
      issues.push(`${at}.proxyCredentialsFile: proxy is none; remove one of them`);
      return out;
    }
    const text = readSecret(s.proxyCredentialsFile, `${at}.proxyCredentialsFile`);
    if (text !== undefined) {
      const line = text.split(/\r?\n/)[0] ?? '';
      const colon = line.indexOf(':');
      if (colon <= 0) {
        issues.push(`${at}.proxyCredentialsFile: write one line user:password (the user may not be empty)`);
      } else out.proxyCredentials = { username: line.slice(0, colon), password: line.slice(colon + 1) };
    }
  }
  return out;
}
