// Pieces every page uses: headings, error and "not available" states, forms whose fields show
// the API's field errors next to them, confirmations and the flash message.

import { ApiError } from './api.js';
import { h, put } from './dom.js';

export function title(text, ...actions) {
  document.title = `${text} · Parley console`;
  return h('div', { class: 'page-head' }, h('h1', {}, text), h('div', { class: 'actions' }, ...actions));
}

export function readOnlyNote(text = 'You can read this but not change it (viewer role or outside your applications).') {
  return h('p', { class: 'note readonly', 'data-testid': 'read-only' }, text);
}

/** What a failed call shows: its message; a 404/405 route says the API is not on this server. */
export function errorBox(error, what) {
  if (error instanceof ApiError && error.missing && what) {
    return h('div', { class: 'unavailable', 'data-testid': 'unavailable' },
      h('strong', {}, `${what} is not available on this server.`),
      h('p', {}, `The API answered ${error.status}: ${error.message}. `
        + 'This server does not have the endpoint yet (an older Parley?).'));
  }
  const text = error instanceof Error ? error.message : String(error);
  const status = error instanceof ApiError && error.status ? ` (${error.status} ${error.code})` : '';
  return h('div', { class: 'error-box', role: 'alert' }, text + status);
}

export function flash(text, kind = 'ok') {
  const el = document.getElementById('flash');
  put(el, text);
  el.className = `flash ${kind}`;
  el.hidden = false;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => { el.hidden = true; }, 6000);
}

/** A labelled field; `name` is the document field whose API errors appear under it. */
export function field(label, name, input, help) {
  input.id = input.id || `f-${name.replace(/[^a-z0-9_-]/gi, '-')}`;
  input.name = input.name || name;
  return h('div', { class: 'field', 'data-field': name },
    h('label', { for: input.id }, label),
    input,
    help ? h('small', { class: 'help' }, help) : null,
    h('div', { class: 'field-error', role: 'alert', 'data-error-for': name }));
}

export function text(value, attrs = {}) {
  return h('input', { type: 'text', value: value ?? '', autocomplete: 'off', ...attrs });
}
export function textarea(value, attrs = {}) {
  return h('textarea', { rows: 3, ...attrs }, value ?? '');
}
export function select(value, options, attrs = {}) {
  return h('select', attrs, ...options.map(([v, label]) => h('option', { value: v, selected: v === (value ?? '') }, label)));
}
export function checkbox(checked, attrs = {}) {
  return h('input', { type: 'checkbox', checked, ...attrs });
}

/** Clear the errors a form shows. */
export function clearErrors(form) {
  for (const el of form.querySelectorAll('.field-error')) el.replaceChildren();
  for (const el of form.querySelectorAll('.field.invalid')) el.classList.remove('invalid');
  const summary = form.querySelector('.form-errors');
  if (summary) { summary.replaceChildren(); summary.hidden = true; }
}

/** Show an ApiError on a form: each field's messages next to it (a nested path such as
 * `channels.telegram.api_base` or `fallback_models[1]` goes to the nearest field shown), the rest
 * and the error's message in the summary at the top. */
export function showErrors(form, error) {
  clearErrors(form);
  const summary = form.querySelector('.form-errors');
  const unplaced = [];
  const fields = error instanceof ApiError ? error.fields : {};
  for (const [path, messages] of Object.entries(fields)) {
    const target = nearestField(form, path);
    if (!target) { unplaced.push(...messages.map((m) => (path ? `${path}: ${m}` : m))); continue; }
    target.classList.add('invalid');
    const slot = target.querySelector('.field-error');
    const shown = target.dataset.field === path ? messages : messages.map((m) => `${path}: ${m}`);
    for (const m of shown) slot.append(h('div', {}, m));
  }
  if (summary) {
    const placed = Object.keys(fields).length > unplaced.length;
    put(summary, h('strong', {}, placed ? 'Not saved: correct the fields marked below.' : 'Not saved.'),
      ' ', error instanceof Error ? error.message : String(error),
      unplaced.length ? h('ul', {}, unplaced.map((m) => h('li', {}, m))) : null);
    summary.hidden = false;
  }
  const first = form.querySelector('.field.invalid input, .field.invalid textarea, .field.invalid select');
  if (first) first.focus();
}

function nearestField(form, path) {
  let candidate = path;
  while (candidate) {
    const el = form.querySelector(`.field[data-field="${CSS.escape(candidate)}"]`);
    if (el) return el;
    const cut = Math.max(candidate.lastIndexOf('.'), candidate.lastIndexOf('['));
    if (cut <= 0) break;
    candidate = candidate.slice(0, cut);
  }
  return null;
}

export function formErrors() {
  return h('div', { class: 'form-errors', role: 'alert', hidden: true });
}

/** Run `work` with `button` disabled and a busy label; errors go to `onError`. */
export async function busy(button, label, work, onError) {
  const before = button.textContent;
  button.disabled = true;
  button.textContent = label;
  try {
    return await work();
  } catch (e) {
    if (onError) onError(e); else flash(e instanceof Error ? e.message : String(e), 'error');
    return undefined;
  } finally {
    button.disabled = false;
    button.textContent = before;
  }
}

export function table(headers, rows, empty = 'Nothing here yet.') {
  if (!rows.length) return h('p', { class: 'muted empty' }, empty);
  return h('table', { class: 'list' },
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', {}, x)))),
    h('tbody', {}, rows));
}

/** null for "", else the trimmed string. */
export const orNull = (value) => { const v = String(value ?? '').trim(); return v === '' ? null : v; };

/** A number input's value: null when empty, a number when it parses, else the raw text (so the
 * API names the field). */
export function numberOrNull(value) {
  const v = String(value ?? '').trim();
  if (v === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : v;
}

export const lines = (value) => String(value ?? '').split('\n').map((l) => l.trim()).filter(Boolean);
