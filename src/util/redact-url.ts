/**
 * Remove user and password from a URL so it can be logged, stored or put in an error message.
 * Text that does not parse as a URL is returned with anything up to an `@` after the scheme cut.
 *
 * @example
 * redactUrl('ftps://ingest:s3cret@radar.example.org/out') // 'ftps://radar.example.org/out'
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username === '' && parsed.password === '') return url;
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    // Not a URL: cut a `scheme://userinfo@` prefix by hand rather than risk printing it.
    return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/]*@/i, '$1');
  }
}
