// One application: create or edit. Write-only fields (secret, channel credentials) are never
// shown: the form says whether they are set and can replace or clear them.

import { ApiError, del, enc, get, patch, post } from '../api.js';
import { navigate } from '../app.js';
import { add, h, link, put, when } from '../dom.js';
import { canWrite } from '../session.js';
import {
  busy, checkbox, clearErrors, errorBox, field, flash, formErrors, lines, orNull, readOnlyNote, select,
  showErrors, text, textarea, title,
} from '../ui.js';

const PLATFORMS = ['telegram', 'whatsapp', 'slack', 'generic'];

async function chatbotIds() {
  try {
    const page = await get('/v1/admin/chatbots?limit=200');
    return page.items.map((c) => c.id);
  } catch {
    return null;   // the field stays a text input
  }
}

export async function render(view, params) {
  const creating = params.id === undefined;
  let app = { id: '', name: '', chatbot_id: '', callback_url: null, allow_anonymous: true, allowed_origins: [],
    secret_set: false, channels_set: [] };
  if (!creating) {
    try {
      app = await get(`/v1/admin/applications/${enc(params.id)}`);
    } catch (e) {
      add(view, title(`Application ${params.id}`), errorBox(e, 'This application'));
      return;
    }
  }
  const writable = canWrite(creating ? null : app.id);
  const bots = await chatbotIds();

  const id = text(app.id, { disabled: !creating, required: true, pattern: '[A-Za-z0-9][A-Za-z0-9_.:@\\-]{0,127}' });
  const name = text(app.name, { required: true });
  const chatbot = bots && (bots.includes(app.chatbot_id) || creating)
    ? select(app.chatbot_id, [['', '— choose a chatbot —'], ...bots.map((b) => [b, b])])
    : text(app.chatbot_id);
  const callback = text(app.callback_url || '', { placeholder: 'https://example.com/parley/replies' });
  const anonymous = checkbox(app.allow_anonymous !== false);
  const origins = textarea((app.allowed_origins || []).join('\n'), { placeholder: 'https://chat.example.com' });

  // the secret: replace it, or clear it
  const secret = h('input', { type: 'password', autocomplete: 'new-password', placeholder: app.secret_set ? 'leave empty to keep it' : '8 characters or more' });
  const clearSecret = checkbox(false, { id: 'clear-secret' });
  const secretState = h('span', { class: 'badge', 'data-testid': 'secret-state' }, app.secret_set ? 'set' : 'not set');

  // channel credentials: one row per stored platform (clear), and a row to set one
  const clearChannels = new Set();
  const channelRows = h('ul', { class: 'channels' });
  function drawChannels() {
    put(channelRows, (app.channels_set || []).map((platform) => {
      const clearing = clearChannels.has(platform);
      return h('li', { 'data-channel': platform, class: clearing ? 'clearing' : '' },
        h('code', {}, platform), ' credentials ', h('span', { class: 'badge' }, clearing ? 'cleared on save' : 'set'), ' ',
        writable ? h('button', { type: 'button', class: 'small', onclick: () => {
          if (clearing) clearChannels.delete(platform); else clearChannels.add(platform);
          drawChannels();
        } }, clearing ? 'Keep' : 'Clear') : null);
    }));
    if (!(app.channels_set || []).length) channelRows.append(h('li', { class: 'muted' }, 'No channel credentials stored.'));
  }
  drawChannels();
  const platform = select('', [['', '— platform —'], ...PLATFORMS.map((p) => [p, p])], { id: 'f-channel-platform' });
  const credentials = textarea('', {
    id: 'f-channel-credentials', rows: 3,
    placeholder: '{"bot_token": "…", "webhook_secret": "…"}', spellcheck: 'false',
  });

  const save = h('button', { type: 'submit', class: 'primary' }, creating ? 'Create application' : 'Save changes');
  const form = h('form', { class: 'card doc-form', novalidate: true, 'data-testid': 'application-form' },
    formErrors(),
    h('fieldset', { disabled: !writable },
      field('Id', 'id', id, creating ? '1–128 letters, digits and _.:@- (cannot be changed later)' : null),
      field('Name', 'name', name),
      field('Chatbot', 'chatbot_id', chatbot, bots && !bots.length ? 'No chatbots yet: create one first.' : null),
      field('Callback URL', 'callback_url', callback, 'Replies to webhook messages are POSTed here; empty: archived only.'),
      h('div', { class: 'field inline', 'data-field': 'allow_anonymous' },
        h('label', {}, anonymous, ' Allow anonymous websocket clients'),
        h('div', { class: 'field-error', 'data-error-for': 'allow_anonymous' })),
      field('Allowed origins', 'allowed_origins', origins, 'One per line (https://host[:port] or *); empty: any origin.'),
      h('h2', {}, 'Secret ', secretState),
      field(app.secret_set ? 'New secret' : 'Secret', 'secret', secret, 'Write-only: it is never shown again.'),
      app.secret_set ? h('label', { class: 'inline' }, clearSecret, ' Clear the stored secret') : null,
      h('h2', {}, 'Channel credentials'),
      h('div', { class: 'field', 'data-field': 'channels' }, channelRows,
        h('div', { class: 'field-error', 'data-error-for': 'channels' })),
      h('div', { class: 'channel-set' },
        field('Set credentials for', 'channels.new', platform),
        field('Credentials (JSON object, write-only)', 'channels.credentials', credentials)),
      writable ? h('div', { class: 'buttons' }, save) : null));

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    clearErrors(form);
    let body;
    try {
      body = document_(creating);
    } catch (e) {
      showErrors(form, e);
      return;
    }
    busy(save, 'Saving…', async () => {
      const saved = creating
        ? await post('/v1/admin/applications', body)
        : await patch(`/v1/admin/applications/${enc(app.id)}`, body);
      flash(creating ? `Application ${saved.id} created.` : `Application ${saved.id} saved.`);
      navigate(`/console/applications/${enc(saved.id)}`, { replace: true });
    }, (e) => showErrors(form, e));
  });

  function document_(full) {
    const body = {
      name: name.value.trim(),
      chatbot_id: chatbot.value.trim(),
      callback_url: orNull(callback.value),
      allow_anonymous: anonymous.checked,
      allowed_origins: lines(origins.value),
    };
    if (full) body.id = id.value.trim();
    if (clearSecret.checked) body.secret = null;
    else if (secret.value) body.secret = secret.value;
    const channels = {};
    for (const p of clearChannels) channels[p] = null;
    if (platform.value || credentials.value.trim()) {
      let parsed;
      try { parsed = JSON.parse(credentials.value || 'null'); } catch { parsed = undefined; }
      const errors = {};
      if (!platform.value) errors['channels.new'] = ['choose the platform these credentials are for'];
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
        errors['channels.credentials'] = ['must be a JSON object, e.g. {"bot_token": "…"}'];
      }
      if (Object.keys(errors).length) throw new ApiError(0, 'invalid', 'the channel credentials are incomplete', errors);
      channels[platform.value] = parsed;
    }
    if (Object.keys(channels).length) body.channels = channels;
    if (full && body.callback_url === null) delete body.callback_url;
    return body;
  }

  const remove = writable && !creating ? h('button', { type: 'button', class: 'danger' }, 'Delete') : null;
  if (remove) {
    remove.addEventListener('click', () => {
      if (!confirm(`Delete application ${app.id}? Its archived messages are kept.`)) return;
      busy(remove, 'Deleting…', async () => {
        await del(`/v1/admin/applications/${enc(app.id)}`);
        flash(`Application ${app.id} deleted.`);
        navigate('/console/applications', { replace: true });
      });
    });
  }
  add(view, 
    title(creating ? 'New application' : `Application ${app.id}`,
      creating ? null : link(`/console/conversations/${enc(app.id)}`, 'Conversations'), remove),
    creating || app.revision === undefined ? null : h('p', { class: 'muted' }, `revision ${app.revision} · updated ${when(app.updated_at)}`),
    writable ? null : readOnlyNote(),
    form);
}
