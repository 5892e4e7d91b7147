// The gateway's JSON API, as the page uses it. The bearer token lives in sessionStorage only
// (gone when the tab closes) and goes out in the Authorization header, never in a URL.

const KEY = 'artifact-gateway.token';

export const session = {
  get token() { return sessionStorage.getItem(KEY); },
  set(token) { sessionStorage.setItem(KEY, token); },
  clear() { sessionStorage.removeItem(KEY); },
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Percent-encodes one path segment exactly as the server writes its URLs. */
export function encodeSegment(s) {
  const keep = (b) => b > 0x20 && b < 0x7f && !'"#%/<>?`{}\\^|[]+'.includes(String.fromCharCode(b));
  let out = '';
  for (const b of new TextEncoder().encode(s)) {
    out += keep(b) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** `/artifacts/<mount>/<path>` (path segments joined by `/`; a trailing `/` kept for directories). */
export function artifactPath(mount, path) {
  return `/artifacts/${encodeSegment(mount)}/${path.split('/').map((s) => (s ? encodeSegment(s) : s)).join('/')}`;
}

/** The absolute URL: the form a FlinkSessionJob `jarURI` and a `fetch` manifest `source` take. */
export function artifactUrl(mount, path) {
  return new URL(artifactPath(mount, path), location.origin).href;
}

export function authHeaders(token = session.token) {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function failure(resp) {
  let code = `http_${resp.status}`, message = `${resp.status} ${resp.statusText}`;
  try {
    const body = await resp.json();
    if (body && body.error) { code = body.error.code; message = body.error.message; }
  } catch { /* not JSON (HEAD responses have no body) */ }
  return new ApiError(resp.status, code, message);
}

async function call(method, url, { token, headers = {} } = {}) {
  const resp = await fetch(url, {
    method,
    headers: { Accept: 'application/json', ...authHeaders(token), ...headers },
    cache: 'no-store',
    credentials: 'omit',
  });
  if (!resp.ok) throw await failure(resp);
  return resp;
}

/** Who the token is and what it may do per mount (no token: anonymous). */
export async function whoami(token = session.token) {
  return (await call('GET', '/whoami', { token: token || undefined })).json();
}

export async function list(mount, dir, { after, limit } = {}) {
  const q = new URLSearchParams();
  if (limit) q.set('limit', String(limit));
  if (after) q.set('after', after);
  const qs = q.toString();
  return (await call('GET', artifactPath(mount, dir) + (qs ? `?${qs}` : ''))).json();
}

function base64ToHex(b64) {
  const bin = atob(b64);
  let s = '';
  for (let i = 0; i < bin.length; i++) s += bin.charCodeAt(i).toString(16).padStart(2, '0');
  return s;
}

/** HEAD: what the server says about one artifact. */
export async function stat(mount, path) {
  const r = await call('HEAD', artifactPath(mount, path));
  const digest = /sha-256=:([A-Za-z0-9+/=]+):/.exec(r.headers.get('repr-digest') || '');
  return {
    size: Number(r.headers.get('content-length')),
    etag: r.headers.get('etag'),
    sha256: digest ? base64ToHex(digest[1]) : null,
    contentType: r.headers.get('content-type'),
    lastModified: r.headers.get('last-modified'),
  };
}

/** DELETE, guarded by the ETag the page showed (a changed artifact is not deleted). */
export async function remove(mount, path, etag) {
  await call('DELETE', artifactPath(mount, path), { headers: etag ? { 'If-Match': etag } : {} });
}
