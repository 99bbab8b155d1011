// Conversations of one application, newest first, searchable by conversation id, sender and text.

import { enc, get, query } from '../api.js';
import { navigate } from '../app.js';
import { add, h, link, when } from '../dom.js';
import { canRead } from '../session.js';
import { errorBox, table, text, title } from '../ui.js';

async function applications() {
  const page = await get('/v1/admin/applications?limit=200');
  return page.items.map((a) => a.id).filter((id) => canRead(id));
}

export async function render(view, params, search) {
  add(view, title('Conversations'));
  let apps;
  try {
    apps = await applications();
  } catch (e) {
    add(view, errorBox(e, 'The applications list'));
    return;
  }
  if (!apps.length) { add(view, h('p', { class: 'muted' }, 'No applications yet.')); return; }
  const app = params.app || apps[0];
  const q = search.get('q') || '';
  const appSelect = h('select', { id: 'conv-app', 'aria-label': 'Application' },
    apps.map((id) => h('option', { value: id, selected: id === app }, id)));
  const box = text(q, { id: 'conv-q', type: 'search', placeholder: 'conversation id, sender or text', 'aria-label': 'Search' });
  const form = h('form', { class: 'filters' }, h('label', { for: 'conv-app' }, 'Application'), appSelect, box,
    h('button', { type: 'submit' }, 'Search'));
  const go = () => navigate(`/console/conversations/${enc(appSelect.value)}${query({ q: box.value.trim() })}`);
  form.addEventListener('submit', (e) => { e.preventDefault(); go(); });
  appSelect.addEventListener('change', go);
  add(view, form);

  let page;
  try {
    page = await get(`/v1/admin/applications/${enc(app)}/conversations${query({ q, limit: 50, cursor: search.get('cursor') })}`);
  } catch (e) {
    add(view, errorBox(e, 'Reading conversations'));
    return;
  }
  const rows = page.items.map((c) => h('tr', { 'data-conversation': c.conversation_id },
    h('td', {}, link(`/console/conversations/${enc(app)}/${enc(c.conversation_id)}`, c.conversation_id)),
    h('td', {}, c.sender || '—'),
    h('td', { class: 'prompt' }, String(c.last_text ?? '').slice(0, 120)),
    h('td', {}, c.handoff ? h('span', { class: 'badge warn' }, `operator: ${c.handoff.operator_name || c.handoff.operator_id}`) : ''),
    h('td', { class: 'muted' }, when(c.last_message_at))));
  add(view, table(['conversation', 'sender', 'last message', '', 'when'], rows,
    q ? `No conversation of ${app} matches “${q}”.` : `No conversations in ${app} yet.`));
  if (page.next_cursor) {
    add(view, h('p', {}, link(`/console/conversations/${enc(app)}${query({ q, cursor: page.next_cursor })}`, 'Older →')));
  }
}
