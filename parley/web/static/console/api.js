// The console's one way to call the API: JSON in and out, the session cookie (with its CSRF
// token on every unsafe request) or the break-glass admin key, a timeout on every call, and the
// API's error envelope turned into an ApiError that names the offending fields.

const KEY_STORE = 'parley.console.admin-key';
const TIMEOUT_MS = 15000;
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

let csrfToken = null;
let onUnauthorized = null;

export class ApiError extends Error {
  constructor(status, code, message, fields, retryAfter) {
    super(message);
    this.status = status;      // 0: the server could not be reached
    this.code = code;
    this.fields = fields;      // {field path: [messages]} from the envelope's `errors`
    this.retryAfter = retryAfter;
  }
  /** 404 / 405 from a route this server does not have (an API not deployed here yet). */
  get missing() { return this.status === 404 || this.status === 405; }
}

export function setCsrfToken(token) { csrfToken = token || null; }
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

export function adminKey() {
  try { return sessionStorage.getItem(KEY_STORE); } catch { return null; }
}
export function setAdminKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORE, key);
    else sessionStorage.removeItem(KEY_STORE);
  } catch { /* storage disabled: the key lasts as long as the page */ }
}

/** {field: [messages]} from the `errors` of an error body ("field" or pydantic's "loc"). */
export function fieldErrors(errors) {
  const fields = {};
  for (const e of Array.isArray(errors) ? errors : []) {
    if (!e || typeof e !== 'object') continue;
    let name = e.field;
    if (name === undefined && Array.isArray(e.loc)) name = e.loc.filter((p) => p !== 'body').join('.');
    else if (name === undefined) name = e.loc;
    name = name === undefined || name === null ? '' : String(name);
    (fields[name] ||= []).push(String(e.message ?? e.msg ?? 'is invalid'));
  }
  return fields;
}

function toError(status, body, headers) {
  // {"type": "error", code, message, errors} or {"error": {code, message, errors}}
  const env = body && typeof body === 'object'
    ? (body.error && typeof body.error === 'object' ? body.error : body) : {};
  const message = typeof env.message === 'string' && env.message
    ? env.message : `the server answered ${status}`;
  const retry = Number(headers.get('Retry-After'));
  return new ApiError(status, String(env.code || 'error'), message, fieldErrors(env.errors),
    Number.isFinite(retry) ? retry : null);
}

/** Call the API. `body` (if any) is sent as JSON; resolves to the parsed answer (null for 204). */
export async function api(method, path, body, { timeoutMs = TIMEOUT_MS, quiet401 = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const key = adminKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (!SAFE.has(method) && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  let response;
  let text;
  try {
    response = await fetch(path, {
      method, headers, credentials: 'same-origin', signal: controller.signal,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    text = await response.text();
  } catch {
    throw new ApiError(0, 'network', controller.signal.aborted
      ? `the server did not answer within ${timeoutMs / 1000} s` : 'the server could not be reached', {}, null);
  } finally {
    clearTimeout(timer);
  }
  let parsed = null;
  if (text) { try { parsed = JSON.parse(text); } catch { parsed = null; } }
  if (!response.ok) {
    const error = toError(response.status, parsed, response.headers);
    if (response.status === 401 && !quiet401 && onUnauthorized) onUnauthorized(error);
    throw error;
  }
  return parsed;
}

export const get = (path, options) => api('GET', path, undefined, options);
export const post = (path, body, options) => api('POST', path, body === undefined ? {} : body, options);
export const put = (path, body, options) => api('PUT', path, body, options);
export const patch = (path, body, options) => api('PATCH', path, body, options);
export const del = (path, options) => api('DELETE', path, undefined, options);

/** A query string from the non-empty values of `params` ("" when none). */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export const enc = encodeURIComponent;
