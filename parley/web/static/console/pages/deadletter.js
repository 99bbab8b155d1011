// One dead letter: its error, stage and original bytes (decoded when they are JSON); replay
// it (produced again to the topic it came from) or purge it.

import { del, enc, get, post } from '../api.js';
import { navigate } from '../app.js';
import { add, h, link, when } from '../dom.js';
import { canWrite } from '../session.js';
import { busy, errorBox, flash, readOnlyNote, title } from '../ui.js';
import { deadLetter } from './deadletters.js';

function row(label, value) {
  return [h('dt', {}, label), h('dd', {}, value ?? '—')];
}

function status(d) {
  const parts = [];
  if (d.replayed_at) parts.push(`replayed ${d.replay_count > 1 ? `${d.replay_count} times, last ` : ''}${when(d.replayed_at)}`);
  if (d.purged_at) parts.push(`purged ${when(d.purged_at)}`);
  return parts.join('; ') || 'new';
}

export async function render(view, params) {
  let d;
  try {
    d = deadLetter(await get(`/v1/admin/dead-letters/${enc(params.id)}`));
  } catch (e) {
    add(view, title(`Dead letter ${params.id}`), errorBox(e, 'This dead letter'));
    return;
  }
  const writable = canWrite(d.application_id ?? null);
  const replay = h('button', { type: 'button', class: 'primary' }, 'Replay');
  const purge = h('button', { type: 'button', class: 'danger' }, 'Purge');
  replay.addEventListener('click', () => busy(replay, 'Replaying…', async () => {
    const answer = await post(`/v1/admin/dead-letters/${enc(d.id)}/replay`);
    const step = (answer && answer.replay) || {};
    flash(`Replayed${step.topic ? ` to ${step.topic}` : ''}: the event is processed again.`);
    navigate(location.pathname, { replace: true });
  }));
  purge.addEventListener('click', () => {
    if (!confirm(`Purge dead letter ${d.id}? Its original bytes are gone for good.`)) return;
    busy(purge, 'Purging…', async () => {
      await del(`/v1/admin/dead-letters/${enc(d.id)}`);
      flash(`Dead letter ${d.id} purged.`);
      navigate('/console/dead-letters', { replace: true });
    });
  });
  const decoded = d.decoded ?? d.original_json ?? null;
  add(view, 
    title(`Dead letter ${d.id}`, link('/console/dead-letters', '← all dead letters'),
      writable ? replay : null, writable ? purge : null),
    writable ? null : readOnlyNote(),
    h('dl', { class: 'facts card' },
      row('stage', d.stage),
      row('error', h('span', { class: 'error-text', 'data-testid': 'dl-error' }, d.error)),
      row('application', d.application_id),
      row('conversation', d.application_id && d.conversation_id
        ? link(`/console/conversations/${enc(d.application_id)}/${enc(d.conversation_id)}`, d.conversation_id)
        : d.conversation_id),
      row('topic', d.topic !== undefined ? `${d.topic}${d.partition !== undefined ? ` [${d.partition}]` : ''}${d.offset !== undefined ? ` @${d.offset}` : ''}` : null),
      row('attempts', d.attempts),
      row('when', when(d.at)),
      row('error type', d.error_type),
      row('status', h('span', { 'data-testid': 'dl-status' }, status(d)))),
    h('h2', {}, 'Original event'),
    decoded !== null
      ? h('pre', { class: 'card', 'data-testid': 'dl-decoded' }, JSON.stringify(decoded, null, 2))
      : h('div', {}, h('p', { class: 'muted' }, 'The original bytes are not JSON; as text:'),
        h('pre', { class: 'card wrap' }, d.original_text ?? '—')),
    h('details', {}, h('summary', {}, 'Original bytes (base64)'),
      h('pre', { class: 'card wrap' }, d.original_b64 || d.original || d.payload_b64 || '—')));
}
