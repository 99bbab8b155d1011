/* Parley chat widget: <script src="https://PARLEY/widget.js" data-application="shop" async></script>
 * Draws a launcher bubble (in a shadow root: the page's styles do not reach it) and opens the
 * chat panel, a page Parley serves, in an iframe (the page's scripts cannot reach it).
 * Attributes: data-application (required), data-user-token (a signed-in user's token, see
 * docs/widget.md), data-position ("right" or "left"), data-open ("true": open on load).
 * Page API: window.ParleyWidget.open(), .close(), .toggle().
 */
(function () {
  'use strict';
  var script = document.currentScript ||
    document.querySelector('script[src*="widget.js"][data-application]');
  if (!script || window.ParleyWidget) return;
  var base = new URL(script.src, location.href).origin;
  var app = script.getAttribute('data-application') || '';
  var token = script.getAttribute('data-user-token') || '';
  var left = script.getAttribute('data-position') === 'left';
  var ACTIVE = 'parley.widget.active.' + app;
  var words = { open_chat: 'Open chat', close: 'Close chat', unread: '{n} unread' };
  var state = { open: false, loaded: false, large: false, unread: 0 };

  var host = document.createElement('div');
  host.setAttribute('data-parley-widget', app);
  var root = host.attachShadow ? host.attachShadow({ mode: 'open' }) : host;
  var side = left ? 'left' : 'right';
  var style = document.createElement('style');
  style.textContent =
    ':host{all:initial}' +
    '.launcher{position:fixed;bottom:20px;' + side + ':20px;z-index:2147483646;width:56px;height:56px;border-radius:50%;border:0;' +
    'background:var(--accent,#2f6fed);color:#fff;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);display:grid;place-items:center;padding:0}' +
    '.launcher:focus-visible{outline:3px solid #fff;outline-offset:-6px}' +
    '.launcher svg{width:28px;height:28px}' +
    '.badge{position:absolute;top:-2px;right:-2px;min-width:20px;height:20px;border-radius:10px;background:#e53935;color:#fff;' +
    'font:600 12px/20px system-ui,sans-serif;text-align:center;padding:0 5px;display:none}' +
    '.badge.show{display:block}' +
    '.panel{position:fixed;bottom:88px;' + side + ':20px;z-index:2147483647;width:380px;height:600px;max-height:calc(100vh - 108px);' +
    'border-radius:14px;overflow:hidden;box-shadow:0 8px 30px rgba(0,0,0,.3);background:#fff;display:none}' +
    '.panel.open{display:block}' +
    '.panel.large{width:min(720px,calc(100vw - 40px));height:calc(100vh - 108px)}' +
    '.panel iframe{border:0;width:100%;height:100%;display:block}' +
    '@media (max-width:520px){.panel{inset:0;width:100%;height:100%;max-height:none;border-radius:0;bottom:0;' + side + ':0}' +
    '.panel.open~.launcher{display:none}}';
  root.appendChild(style);

  var panel = document.createElement('div');
  panel.className = 'panel';
  panel.setAttribute('role', 'dialog');
  panel.setAttribute('aria-label', 'Chat');
  var launcher = document.createElement('button');
  launcher.type = 'button';
  launcher.className = 'launcher';
  launcher.setAttribute('aria-expanded', 'false');
  launcher.setAttribute('aria-label', words.open_chat);
  launcher.innerHTML = '<svg viewBox="0 0 24 24" aria-hidden="true"><path fill="currentColor" d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"/></svg>';
  var badge = document.createElement('span');
  badge.className = 'badge';
  badge.setAttribute('aria-hidden', 'true');
  launcher.appendChild(badge);
  root.appendChild(panel);
  root.appendChild(launcher);
  var frame = null;

  function t(key, n) { return String(words[key] || key).split('{n}').join(String(n)); }
  var phone = window.matchMedia ? window.matchMedia('(max-width: 520px)') : null;
  function post(type) {
    // "fullscreen": on a phone the panel fills the screen, and has no "larger" button
    if (frame && frame.contentWindow) frame.contentWindow.postMessage({ source: 'parley-host', type: type, fullscreen: !!(phone && phone.matches) }, base);
  }
  function load() {
    if (state.loaded) return;
    state.loaded = true;
    frame = document.createElement('iframe');
    frame.title = 'Chat';
    frame.allow = 'clipboard-write';
    // the token travels in the fragment: never sent to a server, so never in an access log
    frame.src = base + '/widget/panel?embed=1&application=' + encodeURIComponent(app) +
      (token ? '#token=' + encodeURIComponent(token) : '');
    frame.addEventListener('load', function () { if (state.open) post('open'); });
    panel.appendChild(frame);
  }
  function setUnread(n) {
    state.unread = n;
    badge.textContent = n > 9 ? '9+' : String(n);
    badge.classList.toggle('show', n > 0);
    launcher.setAttribute('aria-label', n > 0 ? words.open_chat + ' (' + t('unread', n) + ')' : words.open_chat);
  }
  function open() {
    load();
    state.open = true;
    panel.classList.add('open');
    launcher.setAttribute('aria-expanded', 'true');
    setUnread(0);
    post('open');
    if (frame) frame.focus();
  }
  function close() {
    state.open = false;
    panel.classList.remove('open');
    launcher.setAttribute('aria-expanded', 'false');
    post('closed');
    launcher.focus();
  }
  launcher.addEventListener('click', function () { if (state.open) close(); else open(); });

  window.addEventListener('message', function (e) {
    if (e.origin !== base || !frame || e.source !== frame.contentWindow) return;
    var d = e.data || {};
    if (d.source !== 'parley-widget') return;
    if (d.type === 'close') close();
    else if (d.type === 'expand') { state.large = !state.large; panel.classList.toggle('large', state.large); }
    else if (d.type === 'unread') setUnread(state.open ? 0 : Math.max(0, Number(d.count) || 0));
    else if (d.type === 'active') { try { localStorage.setItem(ACTIVE, '1'); } catch (err) {} }
    else if (d.type === 'ready') {
      if (d.accent_color) host.style.setProperty('--accent', d.accent_color);
      if (d.display_name) { panel.setAttribute('aria-label', d.display_name); frame.title = d.display_name; }
      if (state.open) post('open'); else post('closed');
    }
  });

  // the launcher's colour and words before the panel is loaded (public presentation fields)
  fetch(base + '/v1/widget/' + encodeURIComponent(app)).then(function (r) { return r.ok ? r.json() : null; }).then(function (w) {
    if (!w) return;
    if (w.accent_color) host.style.setProperty('--accent', w.accent_color);
    if (w.strings) { words.open_chat = w.strings.open_chat || words.open_chat; words.unread = w.strings.unread || words.unread; }
    setUnread(state.unread);
  }, function () {});

  function mount() {
    document.body.appendChild(host);
    var active = false;
    try { active = localStorage.getItem(ACTIVE) === '1'; } catch (err) {}
    // a visitor who has chatted here gets the panel loaded (closed) so answers raise the badge
    if (script.getAttribute('data-open') === 'true') open(); else if (active) load();
  }
  if (document.body) mount(); else document.addEventListener('DOMContentLoaded', mount);
  window.ParleyWidget = { open: open, close: close, toggle: function () { if (state.open) close(); else open(); } };
})();
