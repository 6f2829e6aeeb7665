// fakemx console: fills the page named by <body data-page> from its JSON API (/api/...).
// Everything a client or a message sent is put into the DOM as text (textContent, text
// nodes): never innerHTML, never a link or an image built from message content.
'use strict';
(function () {
  const page = document.body.dataset.page;
  const $ = (id) => document.getElementById(id);

  /**
   * Text as shown: the bidirectional embedding, override and isolate controls (U+202A..U+202E,
   * U+2066..U+2069; "Trojan Source", CVE-2021-42574) and the marks (U+200E, U+200F, U+061C)
   * become visible [U+202E] marks, so a name such as "report\u202Efdp.exe" cannot display as
   * "reportexe.pdf" or reorder the text around it. The same set util/escape.ts escapes for a
   * terminal.
   */
  const BIDI = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;
  const shown = (s) => String(s).replace(BIDI, (c) => '[U+' + c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0') + ']');

  /** An element with attributes and children (strings become text nodes). */
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') e.textContent = shown(v);
      else if (k === 'className') e.className = v;
      else e.setAttribute(k, String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null) continue;
      e.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(shown(c)) : c);
    }
    return e;
  }

  function status(text, bad) {
    const s = $('status');
    if (!s) return;
    s.textContent = shown(text);
    s.classList.toggle('bad', !!bad);
  }

  /** A 401 means the session cookie expired or the token changed: only a new login helps. */
  function loginOn401(r) {
    if (r.status !== 401) return;
    location.href = '/console/login';
    throw new Error('login required');
  }

  async function getJson(url) {
    const r = await fetch(url, { credentials: 'same-origin', headers: { accept: 'application/json' } });
    loginOn401(r);
    const body = await r.json();
    if (!r.ok) throw new Error(body && body.error ? body.error : 'HTTP ' + r.status);
    return body;
  }

  function fill(tbody, rows) {
    tbody.replaceChildren(...rows);
  }

  function emptyRow(cols, text) {
    return el('tr', {}, el('td', { colspan: cols, className: 'empty', text }));
  }

  const fmt = {
    n: (x) => Number(x).toLocaleString('en'),
    pct: (x) => (x * 100).toFixed(1) + ' %',
    bytes: (b) => (b >= 1048576 ? (b / 1048576).toFixed(1) + ' MB' : b >= 1024 ? (b / 1024).toFixed(1) + ' KB' : b + ' B'),
    dur(ms) {
      const s = Math.floor(ms / 1000);
      if (s < 60) return s + ' s';
      if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
      return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
    },
    time: (iso) => String(iso).replace('T', ' ').replace(/\.\d+Z$/, ''),
  };

  function tagList(tags) {
    const span = el('span', { className: 'tags' });
    for (const t of tags) span.append(el('span', { className: 'tag', text: t }));
    return span;
  }

  function tagCounts(obj) {
    return Object.entries(obj || {}).map(([k, v]) => k + ' ' + v).join(', ');
  }

  /** Re-runs `fn` every `ms` while the page is visible (a hidden tab costs the daemon nothing). */
  function every(ms, fn) {
    let timer = null;
    const run = async () => {
      timer = null;
      try {
        await fn();
        status('updated ' + new Date().toLocaleTimeString('en-GB'), false);
      } catch (e) {
        status(String(e.message || e), true);
      }
      if (!document.hidden) timer = setTimeout(run, ms);
    };
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden && timer === null) run();
    });
    run();
  }

  // ---- Live ------------------------------------------------------------------------------
  const PALETTE = ['#c0392b', '#2471a3', '#1e8449', '#b9770e', '#7d3c98', '#138d90', '#a04000', '#5d6d7e', '#d35400', '#2e4053'];

  function live() {
    const charts = {};
    const width = (id) => Math.max(280, $(id).clientWidth || 600);
    function chart(id, names, data) {
      const key = id + '|' + names.join(',');
      if (charts[id] && charts[id].key === key) {
        charts[id].plot.setData(data);
        return;
      }
      if (charts[id]) charts[id].plot.destroy();
      const series = [{}].concat(names.map((n, i) => ({ label: n, stroke: PALETTE[i % PALETTE.length], width: 1.5, points: { show: false } })));
      const opts = { width: width(id), height: 180, series, scales: { x: { time: true } }, legend: { show: names.length > 1 }, cursor: { drag: { x: false, y: false } } };
      charts[id] = { key, plot: new window.uPlot(opts, data, $(id)) };
    }
    window.addEventListener('resize', () => {
      for (const [id, c] of Object.entries(charts)) c.plot.setSize({ width: width(id), height: 180 });
    });
    every(2000, async () => {
      const d = await getJson('/api/live');
      $('open').textContent = fmt.n(d.open);
      $('connRate').textContent = d.rates.connections.toFixed(2);
      $('msgRate').textContent = d.rates.messages.toFixed(2);
      $('connTotal').textContent = fmt.n(d.totals.connections);
      $('msgTotal').textContent = fmt.n(d.totals.messages);
      const xs = d.series.connections.map((_, i) => (d.start + i * d.bucketMs) / 1000);
      chart('chartConn', ['connections'], [xs, d.series.connections]);
      chart('chartMsg', ['messages'], [xs, d.series.messages]);
      const tags = Object.entries(d.series.verdicts)
        .map(([t, s]) => [t, s, s.reduce((a, b) => a + b, 0)])
        .filter((x) => x[2] > 0)
        .sort((a, b) => b[2] - a[2])
        .slice(0, 8);
      if (tags.length > 0) chart('chartVerdicts', tags.map((t) => t[0]), [xs].concat(tags.map((t) => t[1])));
      else $('chartVerdicts').replaceChildren(el('p', { className: 'empty', text: 'no verdicts in the last hour' }));
      const totals = $('verdictTotals');
      const entries = Object.entries(d.totals.verdicts).sort((a, b) => b[1] - a[1]);
      totals.replaceChildren(...(entries.length ? entries.map(([t, n]) => el('span', { className: 'tag' }, t + ' ', el('b', { text: fmt.n(n) }))) : [el('span', { className: 'empty', text: 'none yet' })]));
      $('sessionsNote').textContent = d.open > d.sessions.length ? '(oldest ' + d.sessions.length + ' of ' + d.open + ')' : '';
      fill(
        $('sessions').tBodies[0],
        d.sessions.length === 0
          ? [emptyRow(8, 'no session open')]
          : d.sessions.map((s) =>
              el('tr', { 'data-session': s.id },
                el('td', { className: 'mono', text: s.client }),
                el('td', { text: s.listener }),
                el('td', { text: s.phase }),
                el('td', { text: fmt.dur(s.ageMs) }),
                el('td', { className: 'mono', text: s.helo === null ? '' : s.helo }),
                el('td', { className: 'mono', text: s.mailFrom === null ? '' : s.mailFrom }),
                el('td', { text: s.rcpts }),
                el('td', {}, tagList(s.verdicts)),
              ),
            ),
      );
    });
  }

  // ---- Caught ----------------------------------------------------------------------------
  function caught() {
    every(10000, async () => {
      const d = await getJson('/api/caught');
      $('since').textContent = 'Since the daemon (or the console) started, ' + fmt.time(new Date(d.since).toISOString()) + ' UTC. Networks count verdicts other than STORED, TLS, DNSWL and HANGUP.';
      const rows = (list, cols, f) => (list.length === 0 ? [emptyRow(cols, 'nothing yet')] : list.map(f));
      fill($('networks').tBodies[0], rows(d.networks, 3, (r) => el('tr', {}, el('td', { className: 'mono', text: r.key }), el('td', { text: fmt.n(r.count) }), el('td', { text: tagCounts(r.tags) }))));
      fill($('helos').tBodies[0], rows(d.helos, 2, (r) => el('tr', {}, el('td', { className: 'mono', text: r.key }), el('td', { text: fmt.n(r.count) }))));
      fill($('senders').tBodies[0], rows(d.senderDomains, 3, (r) => el('tr', {}, el('td', { className: 'mono', text: r.key }), el('td', { text: fmt.n(r.count) }), el('td', { text: tagCounts(r.tags) }))));
      $('tarpitSummary').textContent = fmt.n(d.tarpit.verdicts) + ' tarpitted replies, ' + fmt.dur(d.tarpit.totalMs) + ' of bot time held in all.';
      fill($('tarpit').tBodies[0], rows(d.tarpit.clients, 3, (r) => el('tr', {}, el('td', { className: 'mono', text: r.key }), el('td', { text: fmt.dur(r.extra) }), el('td', { text: fmt.n(r.count) }))));
      $('authSummary').textContent = fmt.n(d.auth.attempts) + (d.auth.attempts === 1 ? ' attempt, failed.' : ' attempts, every one failed.');
      fill($('authUsers').tBodies[0], rows(d.auth.users, 3, (r) => el('tr', {}, el('td', { className: 'mono', text: r.key }), el('td', { text: fmt.n(r.count) }), el('td', { text: tagCounts(r.tags) }))));
      fill($('authClients').tBodies[0], rows(d.auth.clients, 3, (r) => el('tr', {}, el('td', { className: 'mono', text: r.key }), el('td', { text: fmt.n(r.count) }), el('td', { text: tagCounts(r.tags) }))));
      fill(
        $('zones').tBodies[0],
        rows(d.zones, 10, (z) =>
          el('tr', {},
            el('td', { className: 'mono', text: z.zone }),
            zoneCheck(z.check),
            el('td', { className: 'nowrap', text: z.check && z.check.checkedAt ? fmt.time(new Date(z.check.checkedAt).toISOString()) : '' }),
            el('td', { className: 'health-' + z.health, text: z.health === 'unused' ? 'unused' : z.health + ' (' + fmt.pct(z.errorRate) + ')' }),
            el('td', { text: fmt.n(z.queries + z.cacheHits) }),
            el('td', { text: fmt.n(z.cacheHits) }),
            el('td', { text: fmt.n(z.hits) }),
            el('td', { text: fmt.pct(z.hitRate) }),
            el('td', { text: tagCounts(z.errors) || '0' }),
            el('td', { text: z.queries ? Math.round(z.totalMs / z.queries) + ' ms' : '' }),
          ),
        ),
      );
    });
  }

  /** The engine's own test of a zone: state, why, and whether lookups skip it. */
  function zoneCheck(c) {
    if (!c) return el('td', { className: 'health-unused', text: 'not a zone in use' });
    const cls = c.state === 'ok' ? 'ok' : c.state === 'failing' ? 'failing' : 'unused';
    const words = c.state === 'unchecked' ? 'not checked (dns.healthCheckInterval 0)' : c.state === 'unknown' ? 'unknown:' : c.state;
    const extra = [c.reason, c.skipped ? 'skipped by lookups' : null, c.badAnswers ? c.badAnswers + ' bad answers' : null].filter(Boolean).join('; ');
    return el('td', { className: 'health-' + cls }, words, extra ? el('span', { className: 'note', text: ' ' + extra }) : null);
  }

  // ---- Corpus ----------------------------------------------------------------------------
  const FILTERS = ['day', 'verdict', 'client', 'helo', 'from', 'rcpt', 'subject'];
  const PAGE = 50;

  async function corpus() {
    const params = new URLSearchParams(location.search);
    const form = $('filter');
    for (const k of FILTERS) if (form.elements[k] && params.get(k)) form.elements[k].value = params.get(k);
    try {
      const f = await getJson('/api/corpus/facets');
      const day = $('fDay');
      for (const d of f.days) day.append(el('option', { value: d.day, text: d.day + ' (' + d.count + ')' }));
      const v = $('fVerdict');
      for (const [t, n] of Object.entries(f.verdicts).sort()) v.append(el('option', { value: t, text: t + ' (' + n + ')' }));
      if (params.get('day')) day.value = params.get('day');
      if (params.get('verdict')) v.value = params.get('verdict');
    } catch (e) {
      status(String(e.message || e), true);
    }
    const offset = Math.max(0, Number(params.get('offset')) || 0);
    const q = new URLSearchParams();
    for (const k of FILTERS) if (params.get(k)) q.set(k, params.get(k));
    q.set('offset', String(offset));
    q.set('limit', String(PAGE));
    try {
      const d = await getJson('/api/corpus?' + q.toString());
      $('summary').textContent =
        (d.total === 0 ? 'No message matches.' : 'Messages ' + (offset + 1) + '–' + (offset + d.items.length) + ' of ' + fmt.n(d.total) + ', newest first.') +
        (d.indexing ? ' Indexing the store: ' + fmt.n(d.indexed) + ' so far' + (d.progress && d.progress.days ? ' (' + d.progress.done + ' of ' + d.progress.days + ' days)' : '') + '; newest days first.' : '');
      fill(
        $('messages').tBodies[0],
        d.items.length === 0
          ? [emptyRow(8, 'nothing here')]
          : d.items.map((m) =>
              el('tr', { 'data-id': m.id },
                el('td', { className: 'nowrap' }, el('a', { href: '/console/message?id=' + encodeURIComponent(m.id), text: fmt.time(m.receivedAt) })),
                el('td', { className: 'mono', text: m.client }),
                el('td', { className: 'mono', text: m.helo }),
                el('td', { className: 'mono', text: m.from || '<>' }),
                el('td', { className: 'mono', text: m.rcpt.join(', ') + (m.rcptCount > m.rcpt.length ? ' +' + (m.rcptCount - m.rcpt.length) : '') }),
                el('td', { className: 'subject', text: m.subject }),
                el('td', { className: 'nowrap', text: fmt.bytes(m.size) }),
                el('td', {}, tagList(m.verdicts)),
              ),
            ),
      );
      const link = (o) => {
        const p = new URLSearchParams(q);
        p.delete('limit');
        p.set('offset', String(o));
        return '/console/corpus?' + p.toString();
      };
      if (offset > 0) Object.assign($('prev'), { hidden: false, href: link(Math.max(0, offset - PAGE)) });
      if (offset + d.items.length < d.total) Object.assign($('next'), { hidden: false, href: link(offset + PAGE) });
      status('loaded ' + new Date().toLocaleTimeString('en-GB'), false);
    } catch (e) {
      status(String(e.message || e), true);
    }
  }

  // ---- One message -----------------------------------------------------------------------
  async function message() {
    const id = new URLSearchParams(location.search).get('id') || '';
    $('raw').href = '/api/corpus/raw?id=' + encodeURIComponent(id);
    let m;
    try {
      m = await getJson('/api/corpus/message?id=' + encodeURIComponent(id));
    } catch (e) {
      status(String(e.message || e), true);
      return;
    }
    const md = m.metadata;
    $('subject').textContent = m.subject === null ? '(no subject)' : shown(m.subject);
    const meta = [
      ['id', md.id],
      ['received', fmt.time(md.receivedAt) + ' UTC'],
      ['client', md.client.ip + ' port ' + md.client.port],
      ['HELO', md.client.helo === null ? '(none)' : md.client.helo],
      ['listener', md.listener],
      ['MAIL FROM', '<' + md.envelope.mailFrom + '>'],
      ['RCPT TO', md.envelope.rcptTo.map((r) => '<' + r + '>').join(' ')],
      ['From:', m.from || ''],
      ['To:', m.to || ''],
      ['Date:', m.date || ''],
      ['size', fmt.bytes(md.sizes.file)],
      ['TLS', md.tls ? md.tls.protocol + ' ' + md.tls.cipher : 'no'],
      ['tempfailed', md.tempfailed ? 'yes' : 'no'],
      ['DNS lists', md.dns ? 'score ' + md.dns.score + (md.dns.listed ? ', listed' : '') + (md.dns.allowed ? ', allowed' : '') : '(not asked)'],
    ];
    $('meta').replaceChildren(...meta.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { className: 'mono', text: v })]));
    fill($('verdicts').tBodies[0], md.verdicts.length === 0 ? [emptyRow(3, 'none')] : md.verdicts.map((v) => {
      const { tag, atMs, ...rest } = v;
      return el('tr', {}, el('td', {}, tagList([tag])), el('td', { text: atMs + ' ms' }), el('td', { className: 'mono', text: JSON.stringify(rest) }));
    }));
    fill($('attachments').tBodies[0], m.attachments.length === 0 ? [emptyRow(4, 'none')] : m.attachments.map((a) =>
      el('tr', {}, el('td', { className: 'mono', text: a.filename === null ? '(unnamed)' : a.filename }), el('td', { className: 'mono', text: a.mimeType }), el('td', { text: fmt.bytes(a.size) }), el('td', { className: 'mono hash', text: a.sha256 })),
    ));
    $('headerNote').textContent = m.headerCount > m.headers.length ? '(first ' + m.headers.length + ' of ' + m.headerCount + ')' : '';
    fill($('headers').tBodies[0], m.headers.map((h) => el('tr', {}, el('th', { className: 'mono', text: h.name }), el('td', { className: 'mono', text: h.value }))));
    $('text').textContent = m.text === null ? '(no text part)' : shown(m.text);
    $('textNote').textContent = m.textTruncated ? '(cut; the raw download has it all)' : '';
    if (m.htmlSource === null) $('htmlBox').hidden = true;
    else {
      $('html').textContent = shown(m.htmlSource);
      $('htmlNote').textContent = m.htmlTruncated ? '(cut)' : '';
    }
    const warnings = [];
    if (m.parseError) warnings.push('MIME structure not parsed: ' + m.parseError);
    if (m.partsCut) warnings.push('MIME structure read up to its first ' + m.partsCut + ' part boundaries only; the raw download has it all');
    if (warnings.length > 0) {
      $('parseError').hidden = false;
      $('parseError').textContent = shown(warnings.join('. '));
    }
    status('loaded', false);
  }

  // ---- State ------------------------------------------------------------------------------
  const KIND_NAMES = { grey: 'greylist', white: 'allowlist', pass: 'cache: passed', fail: 'cache: failed', trap: 'trap' };

  /** A write: JSON, with the header the server requires of every write (it stops cross-site forms). */
  async function sendJson(method, url, body) {
    const r = await fetch(url, {
      method,
      credentials: 'same-origin',
      headers: { accept: 'application/json', 'content-type': 'application/json', 'x-fakemx-console': '1' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    loginOn401(r);
    const out = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(out && out.error ? out.error : 'HTTP ' + r.status);
    return out;
  }

  function stateValue(kind, v) {
    if (kind === 'grey' && typeof v.first === 'number') return 'first try ' + fmt.time(new Date(v.first).toISOString());
    if (kind === 'white') return (typeof v.n === 'number' ? v.n + ' deliveries' : '') + (v.via ? ', via ' + v.via : '');
    if (kind === 'trap') return (v.rcpt ? 'wrote to ' + v.rcpt : '') + (typeof v.hits === 'number' ? ', ' + v.hits + ' hits' : '');
    return JSON.stringify(v);
  }

  async function state() {
    const params = new URLSearchParams(location.search);
    const form = $('filter');
    for (const k of ['kind', 'q']) if (params.get(k)) form.elements[k].value = params.get(k);
    const q = new URLSearchParams();
    for (const k of ['kind', 'q', 'cursor']) if (params.get(k)) q.set(k, params.get(k));
    let d;
    try {
      d = await getJson('/api/state?' + q.toString());
    } catch (e) {
      status(String(e.message || e), true);
      return;
    }
    const write = d.write === true && d.backend !== null;
    $('writeBox').hidden = !write;
    $('readOnly').hidden = write || d.backend === null;
    $('actionsHead').hidden = !write;
    const reload = () => location.reload();
    const act = (label, fn) => {
      const b = el('button', { type: 'button', text: label });
      b.addEventListener('click', async () => {
        b.disabled = true;
        try {
          await fn();
          reload();
        } catch (e) {
          status(String(e.message || e), true);
          b.disabled = false;
        }
      });
      return b;
    };
    $('summary').textContent =
      (d.backend === null ? d.note : 'Backend ' + d.backend + '. ' + (d.items.length === 0 ? 'No entry here.' : d.items.length + (d.items.length === 1 ? ' entry' : ' entries') + ' on this page.') + (d.cursor ? ' ' + fmt.n(d.examined) + ' keys looked at; more follow.' : '')) +
      (d.backend !== null && d.note ? ' ' + d.note : '');
    fill(
      $('entries').tBodies[0],
      d.items.length === 0
        ? [emptyRow(write ? 7 : 6, 'nothing here')]
        : d.items.map((e) =>
            el('tr', { 'data-key': e.key },
              el('td', { text: KIND_NAMES[e.kind] || e.kind }),
              el('td', { className: 'mono', text: e.subject }),
              el('td', { className: 'mono key', text: e.key }),
              el('td', { className: 'nowrap', text: fmt.time(e.expiresAt) }),
              el('td', { className: 'nowrap', text: fmt.dur(Math.max(0, e.ttlMs)) }),
              el('td', { className: 'mono', text: stateValue(e.kind, e.value || {}) }),
              write
                ? el('td', { className: 'nowrap' },
                    e.kind === 'grey' ? act('allow network', () => sendJson('POST', '/api/state', { action: 'allow', target: e.subject })) : null,
                    e.kind === 'pass' ? act('deny', () => sendJson('POST', '/api/state', { action: 'deny', target: e.subject })) : null,
                    act('delete', () => sendJson('DELETE', '/api/state?key=' + encodeURIComponent(e.key))),
                  )
                : null,
            ),
          ),
    );
    if (params.get('cursor')) {
      const p = new URLSearchParams(q);
      p.delete('cursor');
      Object.assign($('first'), { hidden: false, href: '/console/state?' + p.toString() });
    }
    if (d.cursor) {
      const p = new URLSearchParams(q);
      p.set('cursor', d.cursor);
      Object.assign($('next'), { hidden: false, href: '/console/state?' + p.toString() });
    }
    $('addForm').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const f = ev.target;
      try {
        const r = await sendJson('POST', '/api/state', { action: f.elements.action.value, target: f.elements.target.value });
        const what = r.keys && r.keys.length > 1 ? r.keys.length + ' entries ' + r.keys[0] + ' .. ' + r.keys[r.keys.length - 1] : r.key;
        $('writeResult').textContent = 'added ' + what + ' for ' + fmt.dur(r.ttlMs) + (r.widened ? ' (the whole network greylisting looks up)' : '');
        setTimeout(reload, 300);
      } catch (e) {
        $('writeResult').textContent = shown(e.message || e);
      }
    });
    status('loaded ' + new Date().toLocaleTimeString('en-GB'), false);
  }

  const pages = { live, caught, corpus, message, state };
  if (pages[page]) pages[page]();
})();
