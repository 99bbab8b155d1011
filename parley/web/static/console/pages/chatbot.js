// One chatbot: create or edit every field of the document, and try it on the real websocket
// through an application that uses it.

import { del, enc, get, post, put as putDoc } from '../api.js';
import { navigate } from '../app.js';
import { add, h, put, when } from '../dom.js';
import { canWrite } from '../session.js';
import { tryIt } from '../tryit.js';
import {
  busy, checkbox, clearErrors, errorBox, field, flash, formErrors, lines, numberOrNull, orNull, readOnlyNote,
  select, showErrors, text, textarea, title,
} from '../ui.js';

const PROVIDERS = [['', 'the configured endpoint (PARLEY_LLM_BASE_URL)'], ['openai', 'OpenAI'], ['gemini', 'Gemini'],
  ['grok', 'Grok'], ['custom', 'custom']];
const DOUBLE_TEXTING = [['queue', 'queue: answer each message in turn'],
  ['interrupt', 'interrupt: stop the answer, answer the new message'],
  ['merge', 'merge: answer a burst of messages together']];

async function toolNames() {
  try {
    return (await get('/v1/admin/tools')).items.map((t) => t.name);
  } catch {
    return null;
  }
}

function number(value, attrs = {}) {
  return h('input', { type: 'number', step: 'any', value: value ?? '', ...attrs });
}

export async function render(view, params) {
  const creating = params.id === undefined;
  let bot = { id: '', system_prompt: 'You are a helpful assistant.', tools: null, double_texting: 'queue', fallback_models: [] };
  if (!creating) {
    try {
      bot = await get(`/v1/admin/chatbots/${enc(params.id)}`);
    } catch (e) {
      add(view, title(`Chatbot ${params.id}`), errorBox(e, 'This chatbot'));
      return undefined;
    }
  }
  const writable = canWrite(null);
  const registered = await toolNames();

  const id = text(bot.id, { disabled: !creating });
  const prompt = textarea(bot.system_prompt, { rows: 6 });
  const provider = select(bot.provider || '', PROVIDERS);
  const model = text(bot.model || '', { placeholder: 'PARLEY_LLM_MODEL' });
  const fallbacks = textarea((bot.fallback_models || []).join('\n'), { placeholder: 'gemini:gemini-2.0-flash', rows: 2 });
  const temperature = number(bot.temperature, { min: 0, max: 2, placeholder: 'provider default' });
  const maxTokens = number(bot.max_tokens, { min: 1, placeholder: 'provider limit' });
  const budget = number(bot.history_token_budget, { placeholder: '6000' });
  const doubleTexting = select(bot.double_texting || 'queue', DOUBLE_TEXTING);
  const mergeWindow = number(bot.merge_window_s, { placeholder: '1.5' });
  const historyMessages = number(bot.history_messages, { placeholder: 'PARLEY_HISTORY_MESSAGES' });
  const toolRounds = number(bot.max_tool_rounds, { placeholder: 'PARLEY_MAX_TOOL_ROUNDS' });
  const rate = number(bot.rate_limit_per_minute, { placeholder: 'PARLEY_WS_APP_MESSAGES_PER_MINUTE' });

  // tools: every registered tool (null), or a chosen list
  const allTools = checkbox(bot.tools === null || bot.tools === undefined, { id: 'f-tools-all' });
  const chosen = new Set(bot.tools || []);
  const toolBoxes = registered
    ? registered.map((name) => h('label', { class: 'tool' },
      checkbox(chosen.has(name), { value: name, 'data-tool': name }), ' ', h('code', {}, name)))
    : null;
  const toolText = registered ? null : text((bot.tools || []).join(', '), { id: 'f-tools', placeholder: 'current_time, calculate' });
  const toolList = h('div', { class: 'tool-list' }, toolBoxes || toolText);
  const syncTools = () => { toolList.hidden = allTools.checked; };
  allTools.addEventListener('change', syncTools);
  syncTools();

  const save = h('button', { type: 'submit', class: 'primary' }, creating ? 'Create chatbot' : 'Save changes');
  const form = h('form', { class: 'card doc-form', novalidate: true, 'data-testid': 'chatbot-form' },
    formErrors(),
    h('fieldset', { disabled: !writable },
      creating ? field('Id', 'id', id, '1–128 letters, digits and _.:@-') : null,
      field('System prompt', 'system_prompt', prompt),
      h('div', { class: 'row' },
        field('Provider', 'provider', provider),
        field('Model', 'model', model)),
      field('Fallback models', 'fallback_models', fallbacks, 'One per line, "model" or "provider:model", tried in order.'),
      h('div', { class: 'row' },
        field('Temperature', 'temperature', temperature, '0–2'),
        field('Max tokens', 'max_tokens', maxTokens),
        field('History token budget', 'history_token_budget', budget)),
      h('div', { class: 'field', 'data-field': 'tools' },
        h('label', {}, 'Tools'),
        h('label', { class: 'inline' }, allTools, ' Every registered tool'),
        toolList,
        h('div', { class: 'field-error', 'data-error-for': 'tools' })),
      h('div', { class: 'row' },
        field('Double texting', 'double_texting', doubleTexting),
        field('Merge window (s)', 'merge_window_s', mergeWindow, 'With merge: quiet time before answering')),
      h('div', { class: 'row' },
        field('History messages', 'history_messages', historyMessages),
        field('Tool rounds per message', 'max_tool_rounds', toolRounds),
        field('Websocket messages per minute', 'rate_limit_per_minute', rate)),
      writable ? h('div', { class: 'buttons' }, save) : null));

  function document_() {
    const body = {
      system_prompt: prompt.value,
      provider: orNull(provider.value),
      model: orNull(model.value),
      fallback_models: lines(fallbacks.value),
      temperature: numberOrNull(temperature.value),
      max_tokens: numberOrNull(maxTokens.value),
      history_token_budget: numberOrNull(budget.value),
      double_texting: doubleTexting.value,
      merge_window_s: numberOrNull(mergeWindow.value),
      history_messages: numberOrNull(historyMessages.value),
      max_tool_rounds: numberOrNull(toolRounds.value),
      rate_limit_per_minute: numberOrNull(rate.value),
    };
    if (allTools.checked) body.tools = null;
    else if (toolBoxes) body.tools = toolBoxes.map((l) => l.querySelector('input')).filter((c) => c.checked).map((c) => c.value);
    else body.tools = toolText.value.split(',').map((t) => t.trim()).filter(Boolean);
    if (creating) body.id = id.value.trim();
    // null means "the default": leave those out (a PUT resets what it does not name)
    for (const [k, v] of Object.entries(body)) if (v === null) delete body[k];
    return body;
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    clearErrors(form);
    const body = document_();
    busy(save, 'Saving…', async () => {
      const saved = creating
        ? await post('/v1/admin/chatbots', body)
        : await putDoc(`/v1/admin/chatbots/${enc(bot.id)}`, body);
      flash(creating ? `Chatbot ${saved.id} created.` : `Chatbot ${saved.id} saved: the next turn uses it.`);
      navigate(`/console/chatbots/${enc(saved.id)}`, { replace: true });
    }, (e) => showErrors(form, e));
  });

  const remove = writable && !creating ? h('button', { type: 'button', class: 'danger' }, 'Delete') : null;
  if (remove) {
    remove.addEventListener('click', () => {
      if (!confirm(`Delete chatbot ${bot.id}?`)) return;
      busy(remove, 'Deleting…', async () => {
        await del(`/v1/admin/chatbots/${enc(bot.id)}`);
        flash(`Chatbot ${bot.id} deleted.`);
        navigate('/console/chatbots', { replace: true });
      });
    });
  }

  const layout = h('div', { class: creating ? 'single' : 'split' }, form);
  add(view, 
    title(creating ? 'New chatbot' : `Chatbot ${bot.id}`, remove),
    creating || bot.revision === undefined ? null : h('p', { class: 'muted' }, `revision ${bot.revision} · updated ${when(bot.updated_at)}`),
    writable ? null : readOnlyNote(),
    layout);
  if (creating) return undefined;
  const panel = h('section', { class: 'card tryit', 'data-testid': 'try-it' }, h('h2', {}, 'Try it'), h('p', { class: 'muted' }, 'Loading applications…'));
  add(layout, panel);
  return tryItFor(panel, bot.id);
}

async function tryItFor(panel, chatbotId) {
  let apps = [];
  try {
    const page = await get('/v1/admin/applications?limit=200');
    apps = page.items.filter((a) => a.chatbot_id === chatbotId);
  } catch (e) {
    put(panel, h('h2', {}, 'Try it'), errorBox(e));
    return undefined;
  }
  if (!apps.length) {
    put(panel, h('h2', {}, 'Try it'), h('p', { class: 'muted' },
      'No application uses this chatbot: create one (Applications → New) to chat with it here.'));
    return undefined;
  }
  return tryIt(panel, apps.map((a) => a.id));
}
