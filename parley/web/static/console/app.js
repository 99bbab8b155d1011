// The console's router: one shell page for every /console/… path, each path drawn by a page
// module. Links inside the console navigate without a page load.

import { setUnauthorizedHandler } from './api.js';
import { h, put } from './dom.js';
import { isOwner, restore, role, session, signOut } from './session.js';
import { errorBox, flash } from './ui.js';

const BASE = '/console';
// [pattern, page module, nav section]; `:name` captures one path segment
const ROUTES = [
  ['/signin', 'signin', null],
  ['/', 'overview', 'overview'],
  ['/applications', 'applications', 'applications'],
  ['/applications/new', 'application', 'applications'],
  ['/applications/:id', 'application', 'applications'],
  ['/chatbots', 'chatbots', 'chatbots'],
  ['/chatbots/new', 'chatbot', 'chatbots'],
  ['/chatbots/:id', 'chatbot', 'chatbots'],
  ['/conversations', 'conversations', 'conversations'],
  ['/conversations/:app', 'conversations', 'conversations'],
  ['/conversations/:app/:conv', 'transcript', 'conversations'],
  ['/dead-letters', 'deadletters', 'dead-letters'],
  ['/dead-letters/:id', 'deadletter', 'dead-letters'],
  ['/users', 'users', 'users'],
  ['/users/new', 'user', 'users'],
  ['/users/:id', 'user', 'users'],
  ['/tokens', 'tokens', 'tokens'],
  ['/audit', 'audit', 'audit'],
  ['/account', 'account', null],
];

const main = document.getElementById('main');
let cleanup = null;
let generation = 0;

function match(path) {
  const parts = path.split('/').filter(Boolean);
  for (const [pattern, page, section] of ROUTES) {
    const want = pattern.split('/').filter(Boolean);
    if (want.length !== parts.length) continue;
    const params = {};
    let ok = true;
    want.forEach((w, i) => {
      if (w.startsWith(':')) params[w.slice(1)] = decodeURIComponent(parts[i]);
      else if (w !== parts[i]) ok = false;
    });
    if (ok) return { page, section, params };
  }
  return null;
}

export function navigate(href, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', href); else history.pushState(null, '', href);
  return show();
}

function showChrome() {
  const signed = Boolean(session.user);
  document.getElementById('nav').hidden = !signed;
  document.getElementById('who').hidden = !signed;
  if (!signed) return;
  put(document.getElementById('who-name'), session.user.name || session.user.email || '');
  put(document.getElementById('who-role'), session.via === 'admin_key' ? 'owner · admin key' : session.user.role);
  for (const a of document.querySelectorAll('#nav [data-owner]')) a.hidden = !isOwner();
  for (const a of document.querySelectorAll('#nav [data-admin]')) a.hidden = role() === 'viewer';
}

async function show() {
  const mine = ++generation;
  if (cleanup) { try { cleanup(); } catch { /* a page's teardown never blocks the next page */ } cleanup = null; }
  const url = new URL(location.href);
  const rel = url.pathname.startsWith(BASE) ? url.pathname.slice(BASE.length) || '/' : '/';
  const route = match(rel);
  if (!session.user && (!route || route.page !== 'signin')) {
    history.replaceState(null, '', `${BASE}/signin?next=${encodeURIComponent(url.pathname + url.search)}`);
    return show();
  }
  showChrome();
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('current', Boolean(route) && a.dataset.nav === route.section);
  }
  if (!route) {
    put(main, h('h1', {}, 'No such page'), h('p', {}, 'Nothing lives at ', h('code', {}, url.pathname), '.'));
    return undefined;
  }
  put(main, h('p', { class: 'muted' }, 'Loading…'));
  try {
    const module = await import(`./pages/${route.page}.js`);
    if (mine !== generation) return undefined;
    const view = h('div', { class: 'page', 'data-page': route.page });
    put(main, view);
    const done = await module.render(view, route.params, url.searchParams);
    if (mine === generation && typeof done === 'function') cleanup = done;
    else if (typeof done === 'function') done();
  } catch (e) {
    if (mine === generation) put(main, errorBox(e));
  }
  return undefined;
}

document.addEventListener('click', (event) => {
  const a = event.target.closest('a[href]');
  if (!a || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !(url.pathname === BASE || url.pathname.startsWith(`${BASE}/`))) return;
  if (a.target || a.hasAttribute('download')) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', show);

document.getElementById('sign-out').addEventListener('click', async () => {
  await signOut();
  navigate(`${BASE}/signin`, { replace: true });
});

setUnauthorizedHandler(() => {
  if (!session.user) return;
  session.user = null;
  flash('Your session ended: sign in again.', 'error');
  navigate(`${BASE}/signin?next=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
});

(async () => {
  try {
    await restore();
  } catch (e) {
    put(main, errorBox(e));
    return;
  }
  show();
})();
