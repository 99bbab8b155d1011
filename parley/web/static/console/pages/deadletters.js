// Dead letters: what the agents could not process, newest first, filtered by application and stage.

import { get, query } from '../api.js';
import { navigate } from '../app.js';
import { add, h, link, when } from '../dom.js';
import { errorBox, table, text, title } from '../ui.js';

/** A dead letter's fields under one set of names (the record's `dead_letter_id`, `failed_at`,
 * and `key` = "application/conversation"). */
export function deadLetter(d) {
  const key = typeof d.key === 'string' && d.key.includes('/') ? d.key.split('/') : [];
  return {
    ...d,
    id: d.id ?? d.dead_letter_id,
    at: d.failed_at ?? d.created_at,
    application_id: d.application_id ?? key[0],
    conversation_id: d.conversation_id ?? (key.length ? key.slice(1).join('/') : undefined),
  };
}

export async function render(view, params, search) {
  add(view, title('Dead letters'));
  const app = search.get('application_id') || '';
  const stage = search.get('stage') || '';
  const appBox = text(app, { id: 'dl-app', placeholder: 'any application', 'aria-label': 'Application' });
  const stageBox = text(stage, { id: 'dl-stage', placeholder: 'any stage', 'aria-label': 'Stage' });
  const form = h('form', { class: 'filters' }, appBox, stageBox, h('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    navigate(`/console/dead-letters${query({ application_id: appBox.value.trim(), stage: stageBox.value.trim() })}`);
  });
  add(view, form);
  let page;
  try {
    page = await get(`/v1/admin/dead-letters${query({ application_id: app, stage, limit: 50, cursor: search.get('cursor') })}`);
  } catch (e) {
    add(view, errorBox(e, 'The dead-letter list'));
    return;
  }
  const rows = page.items.map((item) => deadLetter(item)).map((d) => h('tr', { 'data-dead-letter': d.id },
    h('td', {}, link(`/console/dead-letters/${encodeURIComponent(d.id)}`, d.id)),
    h('td', {}, d.stage || '—'),
    h('td', {}, d.application_id || '—'),
    h('td', {}, d.conversation_id || '—'),
    h('td', { class: 'prompt' }, String(d.error || '').slice(0, 140)),
    h('td', {}, d.replayed_at ? h('span', { class: 'badge ok' }, d.replay_count > 1 ? `replayed ×${d.replay_count}` : 'replayed') : ''),
    h('td', { class: 'muted' }, when(d.at))));
  add(view, table(['id', 'stage', 'application', 'conversation', 'error', '', 'when'], rows, 'No dead letters: nothing failed.'));
  if (page.next_cursor) {
    add(view, h('p', {}, link(`/console/dead-letters${query({ application_id: app, stage, cursor: page.next_cursor })}`, 'Older →')));
  }
}
