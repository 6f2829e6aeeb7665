// The console's HTML: one static shell per page. No data is put into HTML on the server:
// the page's script (console.js) fetches the page's JSON API and fills the DOM with
// textContent only, so nothing a client sent can become markup. No inline script or style
// (the Content-Security-Policy forbids both).

export type PageName = 'live' | 'caught' | 'corpus' | 'message' | 'state';

const TITLES: Record<PageName, string> = { live: 'Live', caught: 'Caught', corpus: 'Corpus', message: 'Message', state: 'State' };
const NAV: [PageName, string][] = [
  ['live', '/console/'],
  ['caught', '/console/caught'],
  ['corpus', '/console/corpus'],
  ['state', '/console/state'],
];

function shell(title: string, body: string, scripts: string[], styles: string[]): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title} · fakemx</title>
${styles.map((s) => `<link rel="stylesheet" href="/console/assets/${s}">`).join('\n')}
${scripts.map((s) => `<script src="/console/assets/${s}" defer></script>`).join('\n')}
</head>
${body}
</html>
`;
}

const LIVE_MAIN = `
<section class="cards">
  <div class="card"><span class="k">open sessions</span><span class="v" id="open">–</span></div>
  <div class="card"><span class="k">connections/s</span><span class="v" id="connRate">–</span></div>
  <div class="card"><span class="k">messages/s</span><span class="v" id="msgRate">–</span></div>
  <div class="card"><span class="k">connections since start</span><span class="v" id="connTotal">–</span></div>
  <div class="card"><span class="k">messages since start</span><span class="v" id="msgTotal">–</span></div>
</section>
<section class="charts">
  <figure><figcaption>Connections per 10 s, last hour</figcaption><div id="chartConn" class="chart"></div></figure>
  <figure><figcaption>Messages per 10 s, last hour</figcaption><div id="chartMsg" class="chart"></div></figure>
  <figure class="wide"><figcaption>Verdicts per 10 s by tag, last hour</figcaption><div id="chartVerdicts" class="chart"></div></figure>
</section>
<section>
  <h2>Verdicts since start</h2>
  <div id="verdictTotals" class="tags"></div>
</section>
<section>
  <h2>Sessions open now <span id="sessionsNote" class="note"></span></h2>
  <table id="sessions"><thead><tr><th>client</th><th>listener</th><th>phase</th><th>age</th><th>HELO</th><th>MAIL FROM</th><th>RCPTs</th><th>verdicts so far</th></tr></thead><tbody></tbody></table>
</section>`;

const CAUGHT_MAIN = `
<p class="note" id="since"></p>
<section class="grid">
  <div><h2>Client networks</h2><table id="networks"><thead><tr><th>network</th><th>verdicts</th><th>by tag</th></tr></thead><tbody></tbody></table></div>
  <div><h2>HELO names</h2><table id="helos"><thead><tr><th>HELO</th><th>sessions</th></tr></thead><tbody></tbody></table></div>
  <div><h2>Sender domains</h2><table id="senders"><thead><tr><th>domain</th><th>messages</th><th>by result</th></tr></thead><tbody></tbody></table></div>
  <div><h2>Tarpit</h2><p id="tarpitSummary"></p><table id="tarpit"><thead><tr><th>client</th><th>time held</th><th>tarpitted replies</th></tr></thead><tbody></tbody></table></div>
</section>
<section class="grid">
  <div><h2>AUTH attempts <span class="note">(honeypot: auth.enabled)</span></h2><p id="authSummary"></p><table id="authUsers"><thead><tr><th>user name tried</th><th>attempts</th><th>by mechanism</th></tr></thead><tbody></tbody></table></div>
  <div><h2>AUTH clients</h2><table id="authClients"><thead><tr><th>client</th><th>attempts</th><th>by mechanism</th></tr></thead><tbody></tbody></table></div>
</section>
<section>
  <h2>DNS lists</h2>
  <p class="note">Check: the engine's own RFC 5782 test of the zone (127.0.0.2 listed, 127.0.0.1 not), every dns.healthCheckInterval minutes; a failing zone is skipped until it passes. Error rate: from the lookups since start (failing past 50%).</p>
  <table id="zones"><thead><tr><th>zone</th><th>check</th><th>last checked</th><th>error rate</th><th>lookups</th><th>cache hits</th><th>listed hits</th><th>hit rate</th><th>errors</th><th>mean query</th></tr></thead><tbody></tbody></table>
</section>`;

const CORPUS_MAIN = `
<form id="filter" method="get" action="/console/corpus" class="filter">
  <label>day <select name="day" id="fDay"><option value="">any</option></select></label>
  <label>verdict <select name="verdict" id="fVerdict"><option value="">any</option></select></label>
  <label>client <input name="client" placeholder="IP or CIDR" size="16"></label>
  <label>HELO <input name="helo" size="14"></label>
  <label>sender <input name="from" size="16"></label>
  <label>recipient <input name="rcpt" size="16"></label>
  <label>subject <input name="subject" size="18"></label>
  <button type="submit">Filter</button> <a href="/console/corpus">clear</a>
</form>
<p class="note" id="summary"></p>
<table id="messages"><thead><tr><th>received (UTC)</th><th>client</th><th>HELO</th><th>sender</th><th>recipients</th><th>subject</th><th>size</th><th>verdicts</th></tr></thead><tbody></tbody></table>
<nav class="pager"><a id="prev" href="#" hidden>← newer</a> <a id="next" href="#" hidden>older →</a></nav>`;

const STATE_MAIN = `
<form id="filter" method="get" action="/console/state" class="filter">
  <label>kind <select name="kind" id="fKind">
    <option value="">any</option>
    <option value="grey">greylist (triplets waiting)</option>
    <option value="white">allowlist (networks)</option>
    <option value="pass">client cache: passed a test</option>
    <option value="fail">client cache: failed (deny)</option>
    <option value="trap">traps</option>
  </select></label>
  <label>search <input name="q" placeholder="IP, CIDR, sender, recipient, text" size="30"></label>
  <button type="submit">Search</button> <a href="/console/state">clear</a>
</form>
<p class="note" id="summary"></p>
<table id="entries"><thead><tr><th>kind</th><th>about</th><th>key</th><th>expires (UTC)</th><th>left</th><th>value</th><th id="actionsHead">actions</th></tr></thead><tbody></tbody></table>
<nav class="pager"><a id="first" href="#" hidden>← first page</a> <a id="next" href="#" hidden>more →</a></nav>
<section id="writeBox" hidden>
  <h2>Add an entry</h2>
  <form id="addForm" class="filter">
    <label>action <select name="action">
      <option value="allow">allow: skip greylisting (network)</option>
      <option value="deny">deny: drop at connect (address)</option>
      <option value="trap">trap (address)</option>
    </select></label>
    <label>address <input name="target" placeholder="IP, or CIDR to allow" size="24" required></label>
    <button type="submit">Add</button>
  </form>
  <p class="note" id="writeResult"></p>
</section>
<p class="note" id="readOnly" hidden>Read-only: with http.consoleWrite true this page can allow, deny and delete entries.</p>`;

const MESSAGE_MAIN = `
<p><a href="/console/corpus">← corpus</a> · <a id="raw" href="#" download>download raw .eml</a></p>
<p class="warn">Hostile content: shown as text only. Links are not links, images are not loaded, HTML is shown as source.</p>
<h2 id="subject" class="subject"></h2>
<section class="grid">
  <div><h3>Envelope and session</h3><dl id="meta"></dl></div>
  <div><h3>Attachments</h3><table id="attachments"><thead><tr><th>name</th><th>type</th><th>size</th><th>SHA-256</th></tr></thead><tbody></tbody></table></div>
</section>
<section><h3>Verdicts</h3><table id="verdicts"><thead><tr><th>tag</th><th>at</th><th>details</th></tr></thead><tbody></tbody></table></section>
<section><h3>Header fields <span id="headerNote" class="note"></span></h3><table id="headers" class="headers"><tbody></tbody></table></section>
<section><h3>Text part <span id="textNote" class="note"></span></h3><pre id="text" class="body"></pre></section>
<section><details id="htmlBox"><summary>HTML part, as source <span id="htmlNote" class="note"></span></summary><pre id="html" class="body"></pre></details></section>
<p id="parseError" class="warn" hidden></p>`;

const MAINS: Record<PageName, string> = { live: LIVE_MAIN, caught: CAUGHT_MAIN, corpus: CORPUS_MAIN, message: MESSAGE_MAIN, state: STATE_MAIN };

/** `logout`: the header's log-out button (a form posting to /console/logout), shown with http.token. */
export function page(name: PageName, opts: { logout?: boolean } = {}): string {
  const active = name === 'message' ? 'corpus' : name;
  const nav = NAV.map(([p, href]) => `<a href="${href}"${p === active ? ' aria-current="page"' : ''}>${TITLES[p]}</a>`).join('\n    ');
  const body = `<body data-page="${name}">
<header>
  <span class="brand">fakemx</span>
  <nav>
    ${nav}
  </nav>
  <span id="status" class="status"></span>${opts.logout ? '\n  <form method="post" action="/console/logout" class="logout"><button type="submit">log out</button></form>' : ''}
</header>
<main>
<h1>${TITLES[name]}</h1>${MAINS[name]}
</main>
</body>`;
  const scripts = name === 'live' ? ['uPlot.iife.min.js', 'console.js'] : ['console.js'];
  const styles = name === 'live' ? ['uPlot.min.css', 'console.css'] : ['console.css'];
  return shell(TITLES[name], body, scripts, styles);
}

export function loginPage(failed: boolean): string {
  const body = `<body data-page="login">
<header><span class="brand">fakemx</span></header>
<main class="login">
<h1>Console login</h1>
${failed ? '<p class="warn">That token is not right.</p>' : ''}
<form method="post" action="/console/login">
  <label>token <input type="password" name="token" autocomplete="current-password" autofocus required></label>
  <button type="submit">Log in</button>
</form>
<p class="note">The token is <code>http.token</code> of the daemon's config. API clients send it as <code>Authorization: Bearer &lt;token&gt;</code>.</p>
</main>
</body>`;
  return shell('Login', body, [], ['console.css']);
}
