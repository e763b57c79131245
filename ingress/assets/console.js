// Copydesk operator console: live queue, ages, keyboard shortcuts, the Chatwoot Dashboard
// App handshake. Plain JavaScript, no dependencies, served from /ui/assets (CSP: no inline).
(function () {
  'use strict';
  var body = document.body;
  var page = body.getAttribute('data-page');

  function ageText(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min';
    if (s < 86400) return Math.floor(s / 3600) + ' h';
    return Math.floor(s / 86400) + ' d';
  }
  function tickAges() {
    var now = Date.now();
    document.querySelectorAll('time[data-created]').forEach(function (el) {
      el.textContent = ageText(now - Number(el.getAttribute('data-created')));
    });
  }
  tickAges();
  setInterval(tickAges, 10000);

  // One submission per form: a second click while the first is on its way does nothing.
  document.querySelectorAll('form[method="post"]').forEach(function (form) {
    form.addEventListener('submit', function (ev) {
      if (form.getAttribute('data-sent') === '1') { ev.preventDefault(); return; }
      form.setAttribute('data-sent', '1');
    });
  });

  // ---- live queue: every event fetches one row (a delta), never the whole list ----
  var rows = document.getElementById('queue-rows');
  function setPending(n) {
    if (n === null || n === undefined || isNaN(n)) return;
    var count = document.getElementById('pending-count');
    if (count) count.textContent = String(n);
    document.title = document.title.replace(/^\(\d+\)/, '(' + n + ')');
  }
  function removeRow(id) {
    var row = document.getElementById('row-' + id);
    if (row) row.parentNode.removeChild(row);
  }
  function refreshRow(id, conversation) {
    var filters = window.location.search || '';
    fetch('/ui/fragments/row/' + encodeURIComponent(id) + filters, { credentials: 'same-origin' })
      .then(function (res) {
        setPending(Number(res.headers.get('x-copydesk-pending')));
        return res.status === 200 ? res.text() : '';
      })
      .then(function (html) {
        if (conversation) {
          rows.querySelectorAll('tr[data-conversation="' + conversation + '"]').forEach(function (r) {
            if (r.getAttribute('data-id') !== id) r.parentNode.removeChild(r);
          });
        }
        removeRow(id);
        if (!html) return;
        var holder = document.createElement('tbody');
        holder.innerHTML = html;
        var row = holder.querySelector('tr');
        if (!row) return;
        var score = Number(row.getAttribute('data-score'));
        var before = null;
        rows.querySelectorAll('tr[data-id]').forEach(function (r) {
          if (!before && Number(r.getAttribute('data-score')) > score) before = r;
        });
        rows.insertBefore(row, before);
        var empty = document.getElementById('queue-empty');
        if (empty) empty.parentNode.removeChild(empty);
        tickAges();
      })
      .catch(function () {});
  }
  if (rows && page === 'queue' && window.EventSource) {
    var source = new EventSource('/ui/events');
    source.addEventListener('draft', function (ev) {
      try {
        var d = JSON.parse(ev.data);
        refreshRow(String(d.approval_id), d.account_id + '-' + d.conversation_id);
      } catch (e) { /* not ours */ }
    });
    source.addEventListener('decision', function (ev) {
      try { refreshRow(String(JSON.parse(ev.data).approval_id), null); } catch (e) { /* not ours */ }
    });
    body.setAttribute('data-live', '1');
    source.addEventListener('open', function () { body.setAttribute('data-live', 'open'); });
  }

  // ---- keyboard ----
  var help = document.getElementById('help');
  function typing(el) {
    return el && (el.tagName === 'TEXTAREA' || el.tagName === 'INPUT' || el.tagName === 'SELECT');
  }
  function openBox(id, focusId) {
    var box = document.getElementById(id);
    if (box) box.open = true;
    var el = document.getElementById(focusId);
    if (el) el.focus();
  }
  function queueMove(step) {
    var links = Array.prototype.slice.call(document.querySelectorAll('#queue-rows a.open'));
    if (!links.length) return;
    var at = links.indexOf(document.activeElement);
    var next = at < 0 ? 0 : Math.min(links.length - 1, Math.max(0, at + step));
    links[next].focus();
  }
  document.addEventListener('keydown', function (ev) {
    if ((ev.ctrlKey || ev.metaKey) && ev.key === 'Enter') {
      var form = document.activeElement && document.activeElement.form;
      if (form) { ev.preventDefault(); form.requestSubmit(); }
      return;
    }
    if (ev.key === 'Escape' && help && !help.hidden) { help.hidden = true; return; }
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(document.activeElement)) return;
    var go = function (attr) { var url = body.getAttribute(attr); if (url) window.location.href = url; };
    switch (ev.key) {
      case '?': if (help) help.hidden = !help.hidden; break;
      case 'j': if (page === 'queue') queueMove(1); else go('data-next'); break;
      case 'k': if (page === 'queue') queueMove(-1); else go('data-prev'); break;
      case 'a': {
        var approve = document.getElementById('form-approve');
        if (approve && document.getElementById('approve')) { ev.preventDefault(); approve.requestSubmit(); }
        break;
      }
      case 'e': ev.preventDefault(); openBox('none', 'content'); break;
      case 'r': ev.preventDefault(); openBox('reject-box', 'reason'); break;
      case 'x': ev.preventDefault(); openBox('escalate-box', 'team'); break;
      default: break;
    }
  });

  // ---- Chatwoot Dashboard App: ask for the context, accept it only from the parent ----
  if (page === 'conversation') {
    var allowed = (body.getAttribute('data-allowed-origins') || '').split(' ').filter(Boolean);
    var current = body.getAttribute('data-conversation') || '';
    window.addEventListener('message', function (ev) {
      if (ev.source !== window.parent || allowed.indexOf(ev.origin) < 0) return;
      if (typeof ev.data !== 'string') return;
      var message;
      try { message = JSON.parse(ev.data); } catch (e) { return; }
      if (!message || message.event !== 'appContext' || !message.data) return;
      var conversation = message.data.conversation || {};
      var id = Number(conversation.id);
      if (!Number.isInteger(id) || id <= 0) return;
      if (String(id) === current) return;
      var account = Number(conversation.account_id);
      var url = '/ui/conversation?c=' + id + (Number.isInteger(account) ? '&a=' + account : '');
      window.location.replace(url);
    });
    if (window.parent !== window) {
      window.parent.postMessage('chatwoot-dashboard-app:fetch-info', '*');
    }
  }
})();
