// The audit log: every write, newest first, filtered by actor, application, kind and action.

import { get, query } from '../api.js';
import { navigate } from '../app.js';
import { add, h, link, when } from '../dom.js';
import { errorBox, table, text, title } from '../ui.js';

const FILTERS = [['actor', 'actor (email or id)'], ['application_id', 'application'], ['kind', 'kind (chatbot, application, …)'], ['action', 'action']];

function change(entry) {
  const before = entry.before ? JSON.stringify(entry.before, null, 1) : '';
  const after = entry.after ? JSON.stringify(entry.after, null, 1) : '';
  if (!before && !after) return '';
  return h('details', {}, h('summary', {}, 'before / after'),
    h('div', { class: 'diff' }, h('pre', {}, before || '—'), h('pre', {}, after || '—')));
}

export async function render(view, params, search) {
  add(view, title('Audit log'));
  const boxes = FILTERS.map(([k, placeholder]) => text(search.get(k) || '', { placeholder, 'aria-label': placeholder, 'data-filter': k }));
  const form = h('form', { class: 'filters' }, boxes, h('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    navigate(`/console/audit${query(Object.fromEntries(boxes.map((b) => [b.dataset.filter, b.value.trim()])))}`);
  });
  add(view, form);
  const filters = Object.fromEntries(FILTERS.map(([k]) => [k, search.get(k)]));
  let page;
  try {
    page = await get(`/v1/admin/audit${query({ ...filters, limit: 50, cursor: search.get('cursor') })}`);
  } catch (e) {
    add(view, errorBox(e, 'The audit log'));
    return;
  }
  const rows = (page.items || []).map((a) => {
    const actor = a.actor || {};
    return h('tr', { 'data-audit': a.id || '' },
      h('td', { class: 'muted' }, when(a.at || a.created_at)),
      h('td', {}, actor.email || actor.name || a.actor_email || a.user_id || '—', h('div', { class: 'muted small' }, a.credential || actor.credential || '')),
      h('td', {}, a.action),
      h('td', {}, a.kind, ' ', h('code', {}, a.target_id || '')),
      h('td', {}, a.application_id || '—'),
      h('td', { class: 'muted' }, a.address || a.remote || ''),
      h('td', {}, change(a)));
  });
  add(view, table(['when', 'who', 'action', 'what', 'application', 'from', ''], rows, 'No writes recorded yet.'));
  if (page.next_cursor) add(view, h('p', {}, link(`/console/audit${query({ ...filters, cursor: page.next_cursor })}`, 'Older →')));
}
