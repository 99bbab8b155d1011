// The "try it" panel: a small chat on the real websocket (/ws, docs/websocket-protocol.md), as
// the application's users would chat, in a new conversation of its own.

import { h, hex, put } from './dom.js';

/** Draw the panel in `panel` for one of `applicationIds`; returns a function closing the socket. */
export function tryIt(panel, applicationIds) {
  let ws = null;
  let conversation = null;
  let closed = false;
  const streams = new Map();   // message_id -> bubble
  const mine = new Map();      // client message id -> bubble

  const appSelect = h('select', { id: 'tryit-app', 'aria-label': 'Application' },
    applicationIds.map((id) => h('option', { value: id }, id)));
  const status = h('span', { class: 'badge', 'data-testid': 'tryit-status' }, 'connecting');
  const convLabel = h('code', { class: 'conv-id', 'data-testid': 'tryit-conversation' });
  const log = h('div', { class: 'chat-log', 'aria-live': 'polite', 'data-testid': 'tryit-log' });
  const input = h('textarea', { id: 'tryit-input', rows: 2, placeholder: 'Type a message…', disabled: true });
  const send = h('button', { type: 'submit', class: 'primary', disabled: true }, 'Send');
  const restart = h('button', { type: 'button', class: 'small' }, 'New conversation');
  const form = h('form', { class: 'chat-form' }, input, send);

  function line(cls, text) {
    const el = h('div', { class: `bubble ${cls}` }, text);
    log.append(el);
    log.scrollTop = log.scrollHeight;
    return el;
  }
  function ready(on) { input.disabled = !on; send.disabled = !on; }

  function connect() {
    if (ws) { ws.onclose = null; ws.close(); }
    streams.clear(); mine.clear();
    put(log);
    conversation = `console-${hex(6)}`;
    put(convLabel, conversation);
    put(status, 'connecting');
    status.className = 'badge';
    ready(false);
    const socket = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
    ws = socket;
    socket.onopen = () => socket.send(JSON.stringify({ type: 'hello', application_id: appSelect.value, conversation_id: conversation }));
    socket.onmessage = (event) => {
      let f;
      try { f = JSON.parse(event.data); } catch { return; }
      if (!f || typeof f !== 'object') return;
      if (f.type === 'ready') { put(status, 'online'); status.className = 'badge ok'; ready(true); input.focus(); }
      else if (f.type === 'ack') { const b = mine.get(f.id); if (b) b.classList.remove('sending'); }
      else if (f.type === 'delta') {
        let b = streams.get(f.message_id);
        if (!b) { b = line('assistant streaming', ''); streams.set(f.message_id, b); }
        if (!b.classList.contains('final')) b.textContent += String(f.text ?? '');
      } else if (f.type === 'message') {
        if (f.role && f.role !== 'assistant' && f.role !== 'operator') return;
        let b = streams.get(f.message_id);
        if (!b) { b = line('assistant', ''); streams.set(f.message_id, b); }
        b.classList.remove('streaming'); b.classList.add('final');
        b.textContent = String(f.text ?? '');
        if (f.operator && f.operator.name) b.dataset.operator = f.operator.name;
      } else if (f.type === 'tool') {
        line('tool', `⚙ ${f.name || 'tool'}${f.status ? `: ${f.status}` : ''}`);
      } else if (f.type === 'error') {
        line('error', `${f.code || 'error'}: ${f.message || ''}`);
      }
    };
    socket.onclose = (event) => {
      if (closed || ws !== socket) return;
      ready(false);
      put(status, `closed (${event.code})`);
      status.className = 'badge bad';
    };
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || !ws || ws.readyState !== WebSocket.OPEN) return;
    const id = `m-${hex(6)}`;
    mine.set(id, line('user sending', text));
    ws.send(JSON.stringify({ type: 'message', id, text }));
    input.value = '';
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) { event.preventDefault(); form.requestSubmit(); }
  });
  restart.addEventListener('click', connect);
  appSelect.addEventListener('change', connect);

  put(panel,
    h('h2', {}, 'Try it ', status),
    h('div', { class: 'tryit-head' }, h('label', { for: 'tryit-app' }, 'as application '), appSelect, ' ', restart),
    h('p', { class: 'muted small' }, 'Conversation ', convLabel, ' — archived like any other; find it under Conversations.'),
    log, form);
  connect();
  return () => { closed = true; if (ws) ws.close(); };
}
