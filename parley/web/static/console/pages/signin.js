// Sign-in: email and password (POST /v1/auth/login sets the session cookie), or the
// break-glass admin key (kept in this tab's sessionStorage only).

import { ApiError } from '../api.js';
import { navigate } from '../app.js';
import { add, h } from '../dom.js';
import { session, signIn, signInWithKey } from '../session.js';
import { busy, errorBox, field, formErrors, showErrors, text } from '../ui.js';

function next(query) {
  const target = query.get('next') || '/console/';
  return target.startsWith('/console') && !target.startsWith('/console/signin') ? target : '/console/';
}

export async function render(view, params, query) {
  document.title = 'Sign in · Parley console';
  if (session.user) { navigate(next(query), { replace: true }); return; }
  const email = text('', { type: 'email', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const problem = h('div', { class: 'signin-problem' });
  const form = h('form', { class: 'card signin', novalidate: true },
    h('h1', {}, 'Sign in'),
    formErrors(),
    field('Email', 'email', email),
    field('Password', 'password', password),
    h('div', { class: 'buttons' }, submit), problem);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    problem.replaceChildren();
    busy(submit, 'Signing in…', async () => {
      await signIn(email.value.trim(), password.value);
      navigate(next(query), { replace: true });
    }, (e) => {
      if (e instanceof ApiError && (e.missing || (e.status === 503 && e.code === 'unavailable'))) {
        add(problem, errorBox(e, 'Signing in with an account'),
          h('p', {}, 'Use the admin key below (PARLEY_ADMIN_API_KEY).'));
        keyPart.open = true;
      } else if (e instanceof ApiError && e.status === 429) {
        showErrors(form, new ApiError(429, e.code, `${e.message}${e.retryAfter ? ` (try again in ${e.retryAfter} s)` : ''}`, {}));
      } else {
        showErrors(form, e);
      }
    });
  });

  const key = h('input', { type: 'password', autocomplete: 'off', id: 'admin-key' });
  const keySubmit = h('button', { type: 'submit' }, 'Use the admin key');
  const keyForm = h('form', { class: 'key-form' }, formErrors(), field('Admin key', 'admin_key', key,
    'PARLEY_ADMIN_API_KEY: the break-glass credential, with every right. Kept in this tab only.'),
  h('div', { class: 'buttons' }, keySubmit));
  keyForm.addEventListener('submit', (event) => {
    event.preventDefault();
    busy(keySubmit, 'Checking…', async () => {
      await signInWithKey(key.value.trim());
      navigate(next(query), { replace: true });
    }, (e) => showErrors(keyForm, e));
  });
  const keyPart = h('details', { class: 'card signin' }, h('summary', {}, 'Sign in with the admin key instead'), keyForm);
  add(view, h('div', { class: 'signin-wrap' }, form, keyPart));
  email.focus();
}
