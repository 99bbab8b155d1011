// Overview: turns per minute, p50/p95 answer time and errors over the last hour, and what is
// happening now (dead letters, consumer lag, connected sockets), refreshed every 10 s.

import { get } from '../api.js';
import { lineChart } from '../chart.js';
import { add, h, put } from '../dom.js';
import { errorBox, title } from '../ui.js';

const REFRESH_MS = 10000;

function card(label, value, testid) {
  return h('div', { class: 'stat card', 'data-testid': testid }, h('div', { class: 'stat-value' }, value ?? '—'), h('div', { class: 'muted' }, label));
}

function legend(items) {
  return h('div', { class: 'legend' }, items.map(([name, cls]) => h('span', { class: `key ${cls}` }, name)));
}

export async function render(view) {
  add(view, title('Overview'));
  const body = h('div', { class: 'overview' });
  add(view, body);
  let stop = false;
  let timer = null;
  async function load() {
    let data;
    try {
      data = await get('/v1/admin/overview?minutes=60');
    } catch (e) {
      put(body, errorBox(e, 'The overview'));
      return;
    }
    const s = data.series || {};
    const now = data.now || {};
    put(body,
      h('div', { class: 'stats' },
        card('turns per minute', now.turns_per_minute, 'stat-turns'),
        card('dead letters', now.dead_letters, 'stat-dead-letters'),
        card('consumer lag', now.consumer_lag, 'stat-lag'),
        card('connected sockets', now.sockets, 'stat-sockets')),
      h('div', { class: 'charts' },
        h('section', { class: 'card' }, h('h2', {}, 'Turns per minute'),
          lineChart([{ name: 'turns', points: s.turns || [], cls: 's0' }, { name: 'errors', points: s.errors || [], cls: 'bad' }],
            { label: 'turns and errors per minute, last hour' }),
          legend([['turns', 's0'], ['errors', 'bad']])),
        h('section', { class: 'card' }, h('h2', {}, 'Answer time'),
          lineChart([{ name: 'p50', points: s.answer_p50_ms || [], cls: 's0' }, { name: 'p95', points: s.answer_p95_ms || [], cls: 's1' }],
            { unit: ' ms', label: 'p50 and p95 answer time, last hour' }),
          legend([['p50', 's0'], ['p95', 's1']]))),
      h('p', { class: 'muted small', 'data-testid': 'overview-scope' }, 'Last hour, one point a minute, refreshed every 10 s',
        data.scope === 'pipeline' ? ' · every worker and gateway, from Prometheus' : ' · counted by the process serving this console',
        data.prometheus_error ? ` (Prometheus did not answer: ${data.prometheus_error})` : '', '.'));
  }
  async function poll() {
    if (stop) return;
    await load();
    if (!stop) timer = setTimeout(poll, REFRESH_MS);
  }
  await poll();
  return () => { stop = true; clearTimeout(timer); };
}
