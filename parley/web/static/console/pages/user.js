// One user (owners only): create, or change role, scope, name, disable, reset the password.

import { del, enc, get, patch, post } from '../api.js';
import { navigate } from '../app.js';
import { add, h, put, when } from '../dom.js';
import { isOwner, session } from '../session.js';
import {
  busy, checkbox, clearErrors, errorBox, field, flash, formErrors, lines, readOnlyNote, select, showErrors,
  text, textarea, title,
} from '../ui.js';

const ROLES = [['viewer', 'viewer: reads everything it may see'], ['admin', 'admin: applications, chatbots, dead letters, handoff'],
  ['owner', 'owner: everything, and users']];

export async function render(view, params) {
  const creating = params.id === undefined;
  if (!isOwner()) { add(view, title('User'), readOnlyNote('Only owners manage users.')); return; }
  let user = { email: '', name: '', role: 'viewer', applications: null, disabled: false };
  if (!creating) {
    try {
      user = await get(`/v1/admin/users/${enc(params.id)}`);
    } catch (e) {
      add(view, title('User'), errorBox(e, 'User accounts'));
      return;
    }
  }
  const email = text(user.email, { type: 'email', disabled: !creating });
  const name = text(user.name);
  const role = select(user.role, ROLES);
  const all = checkbox(user.applications === null || user.applications === undefined, { id: 'f-all-apps' });
  const apps = textarea((user.applications || []).join('\n'), { placeholder: 'one application id per line' });
  const syncApps = () => { apps.disabled = all.checked; };
  all.addEventListener('change', syncApps);
  syncApps();
  const password = h('input', { type: 'password', autocomplete: 'new-password', placeholder: creating ? '' : 'leave empty to keep it' });
  const disabled = checkbox(Boolean(user.disabled));
  const save = h('button', { type: 'submit', class: 'primary' }, creating ? 'Create user' : 'Save changes');
  const form = h('form', { class: 'card doc-form', novalidate: true },
    formErrors(),
    field('Email', 'email', email),
    field('Name', 'name', name),
    field('Role', 'role', role),
    h('div', { class: 'field', 'data-field': 'applications' }, h('label', {}, 'Applications'),
      h('label', { class: 'inline' }, all, ' All applications'), apps,
      h('div', { class: 'field-error', 'data-error-for': 'applications' })),
    field(creating ? 'Password' : 'New password', 'password', password),
    creating ? null : h('label', { class: 'inline' }, disabled, ' Disabled (cannot sign in; sessions and tokens stop working)'),
    h('div', { class: 'buttons' }, save));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    clearErrors(form);
    const wanted = { name: name.value.trim(), role: role.value, applications: all.checked ? null : lines(apps.value) };
    let body;
    if (creating) {
      body = { ...wanted, email: email.value.trim(), password: password.value };
    } else {
      // only what changed: a role or scope change ends the user's sessions
      body = {};
      if (wanted.name !== (user.name || '')) body.name = wanted.name;
      if (wanted.role !== user.role) body.role = wanted.role;
      if (JSON.stringify(wanted.applications) !== JSON.stringify(user.applications ?? null)) body.applications = wanted.applications;
      if (disabled.checked !== Boolean(user.disabled)) body.disabled = disabled.checked;
      if (password.value) body.password = password.value;
      if (!Object.keys(body).length) { flash('Nothing changed.'); return; }
    }
    busy(save, 'Saving…', async () => {
      const saved = creating ? await post('/v1/admin/users', body) : await patch(`/v1/admin/users/${enc(user.id)}`, body);
      flash(`User ${saved.email} saved.`);
      navigate(`/console/users/${enc(saved.id)}`, { replace: true });
    }, (e) => showErrors(form, e));
  });
  const linkBox = h('div', { 'data-testid': 'signin-link' });
  const makeLink = !creating && !user.disabled ? h('button', { type: 'button' }, 'Make a sign-in link') : null;
  if (makeLink) {
    makeLink.addEventListener('click', () => busy(makeLink, 'Making…', async () => {
      const made = await post(`/v1/admin/users/${enc(user.id)}/link`);
      const url = new URL(made.path, location.origin).href;
      put(linkBox, h('div', { class: 'card secret-once' },
        h('strong', {}, `A one-time sign-in link for ${user.email}`),
        made.expires_in_s ? ` (valid ${Math.round(made.expires_in_s / 60)} minutes)` : '', ':',
        h('pre', { class: 'wrap' }, url)));
    }));
  }
  const remove = !creating && user.id !== session.user.id ? h('button', { type: 'button', class: 'danger' }, 'Delete') : null;
  if (remove) {
    remove.addEventListener('click', () => {
      if (!confirm(`Delete user ${user.email}?`)) return;
      busy(remove, 'Deleting…', async () => {
        await del(`/v1/admin/users/${enc(user.id)}`);
        flash(`User ${user.email} deleted.`);
        navigate('/console/users', { replace: true });
      });
    });
  }
  add(view, title(creating ? 'New user' : `User ${user.email}`, makeLink, remove),
    creating ? null : h('p', { class: 'muted' }, `created ${when(user.created_at)}`), linkBox, form);
}
