// One's own account: who one is, change the password, sign out everywhere.

import { ApiError, post, setCsrfToken } from '../api.js';
import { navigate } from '../app.js';
import { add, h } from '../dom.js';
import { session, signOut } from '../session.js';
import { busy, clearErrors, field, flash, formErrors, readOnlyNote, showErrors, title } from '../ui.js';
import { scopeText } from './users.js';

export async function render(view) {
  add(view, title('Your account'));
  if (session.via !== 'session') {
    add(view, readOnlyNote('You are using the admin key: it has no account, password or sessions.'));
    return;
  }
  const u = session.user;
  add(view, h('dl', { class: 'facts card' },
    h('dt', {}, 'email'), h('dd', {}, u.email), h('dt', {}, 'name'), h('dd', {}, u.name || '—'),
    h('dt', {}, 'role'), h('dd', {}, u.role), h('dt', {}, 'applications'), h('dd', {}, scopeText(u.applications))));

  const current = h('input', { type: 'password', autocomplete: 'current-password' });
  const fresh = h('input', { type: 'password', autocomplete: 'new-password' });
  const again = h('input', { type: 'password', autocomplete: 'new-password' });
  const change = h('button', { type: 'submit', class: 'primary' }, 'Change the password');
  const form = h('form', { class: 'card doc-form', novalidate: true }, h('h2', {}, 'Password'), formErrors(),
    field('Current password', 'current_password', current),
    field('New password', 'new_password', fresh),
    field('New password again', 'again', again),
    h('p', { class: 'muted small' }, 'Changing it signs you out everywhere else.'),
    h('div', { class: 'buttons' }, change));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    clearErrors(form);
    if (fresh.value !== again.value) {
      showErrors(form, new ApiError(0, 'invalid', 'the password was not changed', { again: ['does not match the new password'] }));
      return;
    }
    busy(change, 'Changing…', async () => {
      const answer = await post('/v1/auth/password', { current_password: current.value, new_password: fresh.value });
      setCsrfToken(answer.csrf_token);   // a new session replaced this one
      form.reset();
      flash('Password changed; your other sessions ended.');
    }, (e) => showErrors(form, e));
  });

  const everywhere = h('button', { type: 'button', class: 'danger' }, 'Sign out everywhere');
  everywhere.addEventListener('click', () => busy(everywhere, 'Signing out…', async () => {
    await signOut({ everywhere: true });
    navigate('/console/signin', { replace: true });
  }));
  add(view, form, h('section', { class: 'card doc-form' }, h('h2', {}, 'Sessions'),
    h('p', {}, 'End every session of your account, in every browser (this one too).'), everywhere));
}
