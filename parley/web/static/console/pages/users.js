// Users (owners only): accounts, their role and application scope.

import { get, query } from '../api.js';
import { add, h, link, when } from '../dom.js';
import { isOwner } from '../session.js';
import { errorBox, readOnlyNote, table, title } from '../ui.js';

export const scopeText = (apps) => (apps === null || apps === undefined ? 'all applications' : apps.join(', ') || 'none');

export async function render(view, params, search) {
  const create = isOwner() ? link('/console/users/new', 'New user') : null;
  if (create) create.className = 'button primary';
  add(view, title('Users', create));
  if (!isOwner()) { add(view, readOnlyNote('Only owners manage users.')); return; }
  let page;
  try {
    page = await get(`/v1/admin/users${query({ limit: 100, after: search.get('after') })}`);
  } catch (e) {
    add(view, errorBox(e, 'User accounts'));
    return;
  }
  const rows = (page.items || []).map((u) => h('tr', { 'data-user': u.email },
    h('td', {}, link(`/console/users/${encodeURIComponent(u.id)}`, u.email)),
    h('td', {}, u.name || ''),
    h('td', {}, h('span', { class: 'badge' }, u.role)),
    h('td', {}, scopeText(u.applications)),
    h('td', {}, u.disabled ? h('span', { class: 'badge bad' }, 'disabled') : ''),
    h('td', { class: 'muted' }, when(u.created_at))));
  add(view, table(['email', 'name', 'role', 'applications', '', 'created'], rows, 'No users yet.'));
  if (page.next_after) add(view, h('p', {}, link(`/console/users${query({ after: page.next_after })}`, 'Next page →')));
}
