// Who is signed in, and what the pages let them do. The API decides (and refuses) anyway: these
// checks only hide or disable controls a principal cannot use.

import { ApiError, adminKey, get, post, setAdminKey, setCsrfToken } from './api.js';

export const session = {
  user: null,   // {id, email, name, role, applications: [...] | null}
  via: null,    // 'session' (cookie + CSRF token) or 'admin_key' (break-glass)
};

function signedIn(user, via, csrf) {
  session.user = user;
  session.via = via;
  setCsrfToken(csrf);
}

/** The session cookie's principal, else the stored admin key's; null when neither works. */
export async function restore() {
  try {
    const answer = await get('/v1/auth/session', { quiet401: true });
    if (answer && answer.user) { signedIn(answer.user, 'session', answer.csrf_token); return session.user; }
  } catch (e) {
    // 401: no session; 404 / 503 `unavailable`: this server has no accounts (only the admin key);
    // 503 `sessions_unavailable` (Redis is down) is said as it is, not read as "signed out"
    if (e instanceof ApiError && e.code === 'sessions_unavailable') throw e;
    if (!(e instanceof ApiError) || (e.status !== 401 && e.status !== 503 && !e.missing)) throw e;
  }
  if (adminKey()) {
    try {
      await get('/v1/admin/applications?limit=1', { quiet401: true });
      signedIn({ id: null, email: null, name: 'Admin key', role: 'owner', applications: null }, 'admin_key', null);
      return session.user;
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) setAdminKey(null);
      else throw e;
    }
  }
  return null;
}

export async function signIn(email, password) {
  const answer = await post('/v1/auth/login', { email, password }, { quiet401: true });
  setAdminKey(null);
  signedIn(answer.user, 'session', answer.csrf_token);
  return answer.user;
}

/** Check the admin key against the API, then keep it for this tab only (sessionStorage). */
export async function signInWithKey(key) {
  setAdminKey(key);
  try {
    await get('/v1/admin/applications?limit=1', { quiet401: true });
  } catch (e) {
    setAdminKey(null);
    throw e;
  }
  signedIn({ id: null, email: null, name: 'Admin key', role: 'owner', applications: null }, 'admin_key', null);
}

export async function signOut({ everywhere = false } = {}) {
  if (session.via === 'session') {
    try { await post(everywhere ? '/v1/auth/logout-everywhere' : '/v1/auth/logout'); } catch { /* gone already */ }
  }
  setAdminKey(null);
  signedIn(null, null, null);
}

export const role = () => (session.user ? session.user.role : null);
export const isOwner = () => role() === 'owner';

/** May the principal change things of `applicationId` (or, with none, things of no application)? */
export function canWrite(applicationId) {
  const r = role();
  if (r === 'owner') return true;
  if (r !== 'admin') return false;
  const scope = session.user.applications;
  return scope === null || scope === undefined || applicationId === undefined || applicationId === null
    || scope.includes(applicationId);
}

export function canRead(applicationId) {
  const scope = session.user ? session.user.applications : [];
  return scope === null || scope === undefined || applicationId === undefined || scope.includes(applicationId);
}
