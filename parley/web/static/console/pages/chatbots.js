// Chatbots: the list, with a link to each one's form and try-it panel.

import { get, query } from '../api.js';
import { add, h, link, when } from '../dom.js';
import { canWrite } from '../session.js';
import { errorBox, table, title } from '../ui.js';

export async function render(view, params, search) {
  const create = canWrite(null) ? link('/console/chatbots/new', 'New chatbot') : null;
  if (create) create.className = 'button primary';
  add(view, title('Chatbots', create));
  let page;
  try {
    page = await get(`/v1/admin/chatbots${query({ limit: 50, after: search.get('after') })}`);
  } catch (e) {
    add(view, errorBox(e, 'The chatbots list'));
    return;
  }
  const rows = page.items.map((bot) => h('tr', { 'data-id': bot.id },
    h('td', {}, link(`/console/chatbots/${encodeURIComponent(bot.id)}`, bot.id)),
    h('td', {}, [bot.provider, bot.model].filter(Boolean).join(' · ') || 'default'),
    h('td', {}, bot.tools === undefined || bot.tools === null ? 'all' : bot.tools.join(', ') || 'none'),
    h('td', {}, bot.double_texting || 'queue'),
    h('td', { class: 'prompt' }, String(bot.system_prompt || '').slice(0, 90)),
    h('td', { class: 'muted' }, when(bot.updated_at))));
  add(view, table(['id', 'model', 'tools', 'double texting', 'prompt', 'updated'], rows, 'No chatbots yet.'));
  if (page.next_after) add(view, h('p', {}, link(`/console/chatbots${query({ after: page.next_after })}`, 'Next page →')));
}
