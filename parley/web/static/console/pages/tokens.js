// Personal API tokens: for automation, scoped (role at most one's own, some applications),
// expiring and revocable. The secret is shown once, when made.

import { del, enc, get, post } from '../api.js';
import { add, h, put, when } from '../dom.js';
import { session } from '../session.js';
import {
  busy, checkbox, clearErrors, errorBox, field, flash, formErrors, lines, numberOrNull, readOnlyNote, select, showErrors,
  table, text, textarea, title,
} from '../ui.js';
import { scopeText } from './users.js';

const ORDER = ['viewer', 'admin', 'owner'];

export async function render(view) {
  add(view, title('API tokens'));
  if (session.via === 'admin_key') {
    add(view, readOnlyNote('Tokens belong to a user account: sign in with one to make them.'));
    return;
  }
  const secretBox = h('div', { 'data-testid': 'token-secret' });
  const listBox = h('div');
  add(view, secretBox, listBox);

  async function drawList() {
    let items;
    try {
      items = (await get('/v1/auth/tokens')).items || [];
    } catch (e) {
      put(listBox, errorBox(e, 'API tokens'));
      return false;
    }
    put(listBox, table(['name', 'role', 'applications', 'expires', 'last used', ''], items.map((t) => {
      const revoke = h('button', { type: 'button', class: 'small danger' }, 'Revoke');
      revoke.addEventListener('click', () => {
        if (!confirm(`Revoke token ${t.name}? Scripts using it stop working.`)) return;
        busy(revoke, 'Revoking…', async () => {
          await del(`/v1/auth/tokens/${enc(t.id)}`);
          flash(`Token ${t.name} revoked.`);
          await drawList();
        });
      });
      return h('tr', { 'data-token': t.name }, h('td', {}, t.name), h('td', {}, t.role),
        h('td', {}, scopeText(t.applications)), h('td', {}, when(t.expires_at)),
        h('td', { class: 'muted' }, when(t.last_used_at)),
        h('td', {}, t.revoked ? h('span', { class: 'badge' }, 'revoked') : revoke));
    }), 'No tokens yet.'));
    return true;
  }
  if (!(await drawList())) return;

  const own = ORDER.indexOf(session.user.role);
  const scoped = Array.isArray(session.user.applications);
  const name = text('', { placeholder: 'deploy script' });
  const role = select('viewer', ORDER.filter((_, i) => i <= own).map((r) => [r, r]));
  const all = checkbox(!scoped, { id: 'f-token-all', disabled: scoped });
  const apps = textarea((session.user.applications || []).join('\n'), { placeholder: 'one application id per line' });
  const syncApps = () => { apps.disabled = all.checked; };
  all.addEventListener('change', syncApps);
  syncApps();
  const days = h('input', { type: 'number', min: 1, value: 90 });
  const make = h('button', { type: 'submit', class: 'primary' }, 'Make a token');
  const form = h('form', { class: 'card doc-form', novalidate: true }, h('h2', {}, 'New token'), formErrors(),
    field('Name', 'name', name), field('Role', 'role', role),
    h('div', { class: 'field', 'data-field': 'applications' }, h('label', {}, 'Applications'),
      h('label', { class: 'inline' }, all, scoped ? ' All my applications (you are scoped to some)' : ' All applications'), apps,
      h('div', { class: 'field-error', 'data-error-for': 'applications' })),
    field('Expires in (days)', 'expires_in_days', days), h('div', { class: 'buttons' }, make));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    clearErrors(form);
    const body = {
      name: name.value.trim(), role: role.value, applications: all.checked ? null : lines(apps.value),
      expires_in_days: numberOrNull(days.value) ?? 90,
    };
    busy(make, 'Making…', async () => {
      const made = await post('/v1/auth/tokens', body);
      put(secretBox, h('div', { class: 'card secret-once' },
        h('strong', {}, `Token ${made.token.name}: copy it now, it is not shown again.`),
        h('pre', { class: 'wrap' }, made.secret)));
      form.reset();
      await drawList();
    }, (e) => showErrors(form, e));
  });
  add(view, form);
}
