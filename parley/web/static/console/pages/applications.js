// Applications: the list (paged by id), with a link to each one's form.

import { get, query } from '../api.js';
import { add, h, link, when } from '../dom.js';
import { canWrite } from '../session.js';
import { errorBox, table, title } from '../ui.js';

export async function render(view, params, search) {
  const after = search.get('after') || '';
  const create = canWrite(null) ? link('/console/applications/new', 'New application') : null;
  if (create) create.className = 'button primary';
  add(view, title('Applications', create));
  let page;
  try {
    page = await get(`/v1/admin/applications${query({ limit: 50, after })}`);
  } catch (e) {
    add(view, errorBox(e, 'The applications list'));
    return;
  }
  const rows = page.items.map((app) => h('tr', { 'data-id': app.id },
    h('td', {}, link(`/console/applications/${encodeURIComponent(app.id)}`, app.id)),
    h('td', {}, app.name),
    h('td', {}, link(`/console/chatbots/${encodeURIComponent(app.chatbot_id)}`, app.chatbot_id)),
    h('td', {}, app.callback_url || '—'),
    h('td', {}, app.secret_set ? 'set' : '—'),
    h('td', {}, (app.channels_set || []).join(', ') || '—'),
    h('td', {}, link(`/console/conversations/${encodeURIComponent(app.id)}`, 'conversations')),
    h('td', { class: 'muted' }, when(app.updated_at))));
  add(view, table(['id', 'name', 'chatbot', 'callback URL', 'secret', 'channels', '', 'updated'], rows,
    'No applications yet.'));
  if (page.next_after) {
    add(view, h('p', {}, link(`/console/applications${query({ after: page.next_after })}`, 'Next page →')));
  }
}
