// A conversation's transcript: messages with tool calls and results, attachments, delivery and
// replay marks; an admin takes the conversation over, answers as operator, and hands it back.

import { ApiError, del, enc, get, post } from '../api.js';
import { add, h, link, put, when } from '../dom.js';
import { canWrite, session } from '../session.js';
import { busy, errorBox, flash, title } from '../ui.js';

const POLL_MS = 3000;

function pretty(value) {
  if (typeof value === 'string') {
    try { return JSON.stringify(JSON.parse(value), null, 2); } catch { return value; }
  }
  return JSON.stringify(value, null, 2);
}

function message(m) {
  if (m.role === 'handoff') {
    return h('div', { class: 'handoff-note', 'data-role': 'handoff' }, `— ${m.text} · ${when(m.created_at)} —`);
  }
  const who = m.role === 'operator' ? `operator ${m.operator ? m.operator.name || m.operator.id : ''}`.trim()
    : m.role === 'user' ? `user ${m.sender || ''}`.trim() : m.role;
  const marks = [
    m.replayed ? h('span', { class: 'badge warn', title: `produced again by replay ${m.replay_id || ''}` }, 'replayed') : null,
    m.stopped ? h('span', { class: 'badge' }, 'stopped') : null,
    m.is_error ? h('span', { class: 'badge bad' }, 'error reply') : null,
    m.delivery ? h('span', { class: `badge ${m.delivery.status === 'failed' ? 'bad' : m.delivery.status === 'pending' ? 'warn' : 'ok'}`, 'data-testid': 'delivery' },
      `delivery: ${m.delivery.status || 'unknown'}${m.delivery.channel ? ` (${m.delivery.channel})` : ''}`
      + `${m.delivery.error ? ` — ${m.delivery.error}` : ''}`) : null,
  ];
  return h('article', { class: `msg ${m.role}`, 'data-role': m.role, 'data-message': m.message_id },
    h('header', {}, h('strong', {}, who), ' ', h('span', { class: 'muted' }, when(m.created_at)), ' ', marks),
    m.text && m.role !== 'tool' ? h('div', { class: 'text' }, m.text) : null,   // a tool's text is its result, below
    (m.tool_calls || []).map((c) => h('div', { class: 'tool-call', 'data-testid': 'tool-call' },
      h('div', {}, '⚙ call ', h('code', {}, c.name), h('span', { class: 'muted' }, ` ${c.id || ''}`)),
      h('pre', {}, pretty(c.arguments)))),
    (m.tool_results || []).map((r) => h('div', { class: 'tool-result', 'data-testid': 'tool-result' },
      h('div', {}, '↳ result of ', h('code', {}, r.name || r.call_id), r.is_error ? h('span', { class: 'badge bad' }, 'error') : null),
      h('pre', {}, pretty(r.content)))),
    (m.attachments || []).length
      ? h('ul', { class: 'attachments', 'data-testid': 'attachments' }, m.attachments.map(attachment)) : null);
}

/** One of the archive's three attachment shapes (docs/attachments.md): a stored file, a file
 * still on a platform, a file that could not be taken. */
function attachment(a) {
  const facts = [a.content_type, Number.isFinite(a.size) ? `${a.size} bytes` : null].filter(Boolean).join(', ');
  return h('li', { 'data-file': a.file_id || a.ref || '' }, '📎 ', h('strong', {}, a.name || a.file_id || 'file'),
    facts ? h('span', { class: 'muted' }, ` (${facts})`) : null,
    a.platform ? h('span', { class: 'badge' }, `on ${a.platform}`) : null,
    a.error ? h('span', { class: 'badge bad' }, `not taken: ${a.error}`) : null);
}

export async function render(view, params) {
  const { app, conv } = params;
  const base = `/v1/admin/applications/${enc(app)}/conversations/${enc(conv)}`;
  const status = h('div', { class: 'handoff' });
  const list = h('div', { class: 'transcript', 'data-testid': 'transcript' });
  const writable = canWrite(app);
  add(view, title(`Conversation ${conv}`, link(`/console/conversations/${enc(app)}`, `← ${app}`)), status, list);

  let stop = false;
  let timer = null;
  let shown = '';
  let shownHandoff = null;

  async function load() {
    let t;
    try {
      t = await get(base);
    } catch (e) {
      put(list, errorBox(e, 'Reading a transcript'));
      return;
    }
    const key = JSON.stringify(t);
    if (key === shown) return;
    shown = key;
    const handoffKey = JSON.stringify(t.handoff ?? null);
    if (handoffKey !== shownHandoff) { shownHandoff = handoffKey; drawHandoff(t.handoff); }
    put(list, (t.messages || []).length ? t.messages.map(message) : h('p', { class: 'muted' }, 'No messages.'));
  }

  function drawHandoff(handoff) {
    const mine = handoff && session.user && handoff.operator_id === session.user.id;
    const take = h('button', { type: 'button', class: 'primary' }, 'Take over');
    const give = h('button', { type: 'button' }, 'Hand back to the bot');
    take.addEventListener('click', () => busy(take, 'Taking over…', async () => {
      await post(`${base}/handoff`);
      flash('You answer this conversation now; the bot is paused.');
      shown = ''; shownHandoff = null; await load();
    }, (e) => flash(message_(e), 'error')));
    give.addEventListener('click', () => busy(give, 'Handing back…', async () => {
      await del(`${base}/handoff`);
      flash('Handed back: the bot answers again.');
      shown = ''; shownHandoff = null; await load();
    }, (e) => flash(message_(e), 'error')));

    const reply = h('textarea', { id: 'operator-text', rows: 2, placeholder: 'Answer as operator…' });
    const sendReply = h('button', { type: 'submit', class: 'primary' }, 'Send as operator');
    const form = h('form', { class: 'operator-form' }, reply, sendReply);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const textValue = reply.value.trim();
      if (!textValue) return;
      busy(sendReply, 'Sending…', async () => {
        await post(`${base}/messages`, { text: textValue });
        reply.value = '';
        flash('Sent to the user.');
        shown = ''; shownHandoff = null; await load();
      }, (err) => flash(message_(err), 'error'));
    });
    put(status,
      handoff
        ? h('p', { class: 'badge-line', 'data-testid': 'handoff-state' }, h('span', { class: 'badge warn' }, 'taken over'),
          ` by ${handoff.operator_name || handoff.operator_id} since ${when(handoff.since)}`)
        : h('p', { class: 'badge-line', 'data-testid': 'handoff-state' }, h('span', { class: 'badge ok' }, 'bot answering')),
      writable ? h('div', { class: 'buttons' }, handoff ? give : take) : null,
      writable && handoff && (mine || session.via === 'admin_key' || !session.user.id) ? form : null);
  }

  function message_(e) {
    return e instanceof ApiError && e.missing ? `Handoff is not available on this server (${e.status}).` : e.message;
  }

  async function poll() {
    if (stop) return;
    await load();
    if (!stop) timer = setTimeout(poll, POLL_MS);
  }
  await poll();
  return () => { stop = true; clearTimeout(timer); };
}
