/**
 * Real web servers on 127.0.0.1 for the HTTP source tests: nginx (HTML or JSON autoindex),
 * Apache httpd (mod_autoindex: fancy as an HTML table as Debian ships it, fancy in `<pre>`, and the
 * plain list), lighttpd (mod_dirlisting), `python3 -m http.server`; and s3rver (S3 API) in process. Each serves
 * a fresh tmp directory and is stopped by `close()`. A server whose binary is missing is reported
 * by `httpServerMissing` so suites can skip with a notice (and fail under CI=true).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './free-port.js';
import { waitFor } from './wait-for.js';

export type WebServerKind =
  | 'nginx-html'
  | 'nginx-json'
  | 'apache-table'
  | 'apache-pre'
  | 'apache-plain'
  | 'lighttpd'
  | 'python';

export interface WebServerOptions {
  /** The server process's TZ (Apache and lighttpd write index times in local time). @default 'UTC' */
  timezone?: string;
  /** nginx only: serve HTTPS with this certificate and key. */
  tls?: { certPath: string; keyPath: string };
}

/** The token nginx accepts under `/bearer/` (`Authorization: Bearer <token>`). */
export const TEST_BEARER_TOKEN = 'test-bearer-token-1';

/** mod_autoindex options per Apache kind; the table form is Debian's default autoindex.conf. */
const APACHE_INDEX_OPTIONS: Record<string, string> = {
  'apache-table': 'FancyIndexing VersionSort HTMLTable NameWidth=* DescriptionWidth=* Charset=UTF-8',
  'apache-pre': 'FancyIndexing NameWidth=* Charset=UTF-8',
  'apache-plain': '-FancyIndexing Charset=UTF-8',
};

export interface TestWebServer {
  kind: WebServerKind;
  port: number;
  /** The served directory. */
  root: string;
  /**
   * Requests logged by the server: method and path, in order (nginx, Apache and lighttpd). lighttpd
   * buffers its log, so this first sends a marker request and waits until the log shows it.
   */
  accessLog(): Promise<string[]>;
  /** nginx only: the connection serial number of each logged request (marker requests left out). */
  connectionIds(): Promise<string[]>;
  close(): Promise<void>;
}

const BINARIES: Record<WebServerKind, string> = {
  'nginx-html': '/usr/sbin/nginx',
  'nginx-json': '/usr/sbin/nginx',
  'apache-table': '/usr/sbin/apache2',
  'apache-pre': '/usr/sbin/apache2',
  'apache-plain': '/usr/sbin/apache2',
  lighttpd: '/usr/sbin/lighttpd',
  python: 'python3',
};

/** Why a server cannot run here, or undefined. */
export function httpServerMissing(kind: WebServerKind): string | undefined {
  const bin = BINARIES[kind];
  if (bin.startsWith('/') && !existsSync(bin)) return `${bin} is not installed (bash scripts/install-http-servers.sh)`;
  return undefined;
}

async function portOpen(port: number, tls: boolean): Promise<boolean> {
  if (tls) {
    // A self-signed server: accepting a TCP connection is enough.
    return new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
  }
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

export async function startWebServer(kind: WebServerKind, opts: WebServerOptions = {}): Promise<TestWebServer> {
  const tz = opts.timezone ?? 'UTC';
  const dir = await mkdtemp(path.join(tmpdir(), `poller-${kind}-`));
  const root = path.join(dir, 'www');
  await mkdir(root);
  const port = await freePort();
  const access = path.join(dir, 'access.log');
  let child: ChildProcess;
  if (kind === 'nginx-html' || kind === 'nginx-json') {
    for (const d of ['client', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) await mkdir(path.join(dir, d));
    const conf = path.join(dir, 'nginx.conf');
    const index = `autoindex on; ${kind === 'nginx-json' ? 'autoindex_format json;' : ''}`;
    await writeFile(path.join(dir, 'soft-404.html'), '<html><body>Sorry, no such file here.</body></html>\n');
    await writeFile(
      conf,
      `daemon off;
worker_processes 1;
user root;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 256; }
http {
  # The connection serial number first: a witness of keep-alive.
  log_format poller '$connection "$request" $status';
  access_log ${access} poller;
  client_body_temp_path ${dir}/client;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  types { application/octet-stream bin; }
  server {
    listen 127.0.0.1:${port}${opts.tls ? ' ssl' : ''};
    ${opts.tls ? `ssl_certificate ${opts.tls.certPath}; ssl_certificate_key ${opts.tls.keyPath};` : ''}
    root ${root};
    location / { ${index} }
    location /protected/ { ${index} auth_basic "x"; auth_basic_user_file ${dir}/htpasswd; }
    # Faults a real server shows: no access, a "soft 404" page with status 200, throttling.
    location /forbidden/ { deny all; }
    location /bearer/ { if ($http_authorization != "Bearer ${TEST_BEARER_TOKEN}") { return 401; } ${index} }
    location /soft/ { ${index} error_page 404 =200 /soft-404.html; }
    location = /soft-404.html { internal; root ${dir}; }
    location ~ ^/busy/slow[^/]*$ { add_header Retry-After 7 always; return 429; }
    location ~ ^/busy/.+$ { add_header Retry-After 9 always; return 503; }
    location /busy/ { ${index} }
    location ~ ^/broken/.+$ { return 500; }
  }
}
`,
    );
    child = spawn('/usr/sbin/nginx', ['-c', conf, '-p', dir], { stdio: 'ignore' });
  } else if (kind.startsWith('apache-')) {
    // Started as root, Apache serves as `www-data`: the tree must be readable by others.
    await chmod(dir, 0o755);
    await chmod(root, 0o755);
    const conf = path.join(dir, 'httpd.conf');
    const mod = (name: string) => `LoadModule ${name}_module /usr/lib/apache2/modules/mod_${name}.so`;
    await writeFile(
      conf,
      `ServerRoot ${dir}
PidFile ${dir}/httpd.pid
DefaultRuntimeDir ${dir}
Listen 127.0.0.1:${port}
ServerName 127.0.0.1
${['mpm_event', 'authz_core', 'authn_core', 'authn_file', 'authz_user', 'auth_basic', 'autoindex', 'mime'].map(mod).join('\n')}
${process.getuid?.() === 0 ? 'User www-data\nGroup www-data' : ''}
ErrorLog ${dir}/error.log
CustomLog ${access} "%h \\"%r\\" %>s"
TypesConfig /dev/null
AddType application/octet-stream .bin .bufr
DocumentRoot ${root}
<Directory ${root}>
  Options +Indexes
  Require all granted
  IndexOptions ${APACHE_INDEX_OPTIONS[kind]}
</Directory>
<Directory ${root}/protected>
  AuthType Basic
  AuthName "x"
  AuthUserFile ${dir}/htpasswd
  Require valid-user
</Directory>
`,
    );
    child = spawn('/usr/sbin/apache2', ['-DFOREGROUND', '-f', conf], {
      stdio: 'ignore',
      env: { ...process.env, TZ: tz, APACHE_RUN_DIR: dir, APACHE_LOCK_DIR: dir },
    });
  } else if (kind === 'lighttpd') {
    const conf = path.join(dir, 'lighttpd.conf');
    await writeFile(
      conf,
      `server.document-root = "${root}"
server.bind = "127.0.0.1"
server.port = ${port}
server.modules = ( "mod_accesslog" )
dir-listing.activate = "enable"
dir-listing.encoding = "utf-8"
accesslog.filename = "${access}"
server.errorlog = "${dir}/error.log"
server.stat-cache-engine = "disable"
mimetype.assign = ( "" => "application/octet-stream" )
`,
    );
    child = spawn('/usr/sbin/lighttpd', ['-D', '-f', conf], { stdio: 'ignore', env: { ...process.env, TZ: tz } });
  } else {
    child = spawn('python3', ['-m', 'http.server', String(port), '--bind', '127.0.0.1', '--directory', root], {
      stdio: 'ignore',
    });
  }
  let exited = false;
  let markers = 0;
  child.once('exit', () => {
    exited = true;
  });
  await waitFor(async () => exited || (await portOpen(port, opts.tls !== undefined)), { timeoutMs: 15_000 });
  if (exited) throw new Error(`${kind} exited at start; see ${dir}`);
  const accessLog = async (): Promise<string[]> => {
    const marker = `/__marker-${++markers}`;
    await fetch(`http://127.0.0.1:${port}${marker}`).then((r) => r.arrayBuffer());
    const lines = await waitFor(
      async () => {
        const text = await readFile(access, 'utf8').catch(() => '');
        const all = [...text.matchAll(/"([A-Z]+) (\S+) HTTP/g)].map((m) => `${m[1]} ${m[2]}`);
        return all.includes(`GET ${marker}`) ? all : undefined;
      },
      { timeoutMs: 15_000 },
    );
    return lines.filter((l) => !l.includes('/__marker-'));
  };
  return {
    kind,
    port,
    root,
    accessLog,
    async connectionIds() {
      // The marker request makes sure the server has written every earlier line.
      await accessLog();
      const text = await readFile(access, 'utf8');
      return [...text.matchAll(/^(\d+) "[A-Z]+ (\S+) /gm)]
        .filter((m) => !(m[2] as string).includes('/__marker-'))
        .map((m) => m[1] as string);
    },
    async close() {
      if (!exited) {
        const gone = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await gone;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
