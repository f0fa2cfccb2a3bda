# ruff: noqa: E501 - the page and script are data: their lines are as long as they read best
# The web interface's page and script (served by manager_fw/web/app.py).  Plain HTML and
# JavaScript, no framework, no external file: the Pico W serves it from flash, and the
# first page stays small (web.page_kb_gz in docs/benchmarks.md).  Values arrive in the
# core's integer units (µV, m°C, nΩ, mA) and are formatted here, in the browser.

PAGE_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>StringCare</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
header{display:flex;gap:1.5em;align-items:center;flex-wrap:wrap;padding:.6em 1.2em;
background:#24292f;color:#fff}
header h1{font-size:1.15em;margin:0}header .who{margin-left:auto}
nav button{background:none;border:0;color:#c9d1d9;font-size:1em;padding:.3em .6em;cursor:pointer}
nav button.on{color:#fff;border-bottom:2px solid #fff}
main{padding:0 1.2em 2em}.hidden{display:none}
section.card{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:.6em 1em 1em;
margin:1em 0}
h2{font-size:1.05em;margin:.2em 0 .5em}.summary span{display:inline-block;margin-right:1.6em}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:.22em .6em;text-align:right;border-bottom:1px solid #eaeef2}
th{cursor:pointer;user-select:none;background:#f0f3f6}
th.asc::after{content:" \\25b2"}th.desc::after{content:" \\25bc"}
td.l,th.l{text-align:left}tr.module{cursor:pointer}
.chip{display:inline-block;width:.9em;height:.9em;border-radius:50%;vertical-align:middle;
margin-right:.4em}
.ok{background:#2da44e}.warning{background:#f0883e}.alarm{background:#cf222e}
.silent{background:#6e7781}.unknown{background:#d0d7de}
.bar{display:inline-block;height:.7em;background:#54aeff;vertical-align:middle}
.alarmtext{color:#b00020;font-weight:600}header .alarmtext{color:#ff8182}
#msg{margin:.8em 0;padding:.5em 1em;border-radius:6px}
#msg.good{background:#dafbe1}#msg.bad{background:#ffebe9}
label{display:inline-block;min-width:16em}input,select{margin:.2em 0}
button.act{margin:.2em .4em .2em 0;padding:.3em .8em}
textarea{width:100%;height:18em;font-family:monospace}
.ev{font-size:.9em}.ev td{text-align:left}
</style></head>
<body>
<header><h1>StringCare <span id="site"></span></h1>
<nav id="tabs"><button data-tab="status" class="on">Status</button>
<button data-tab="actions">Actions</button><button data-tab="config">Configuration</button>
<button data-tab="events">Events</button><button data-tab="module">Module</button>
<button data-tab="addressing">Addressing</button><button data-tab="charts">Charts</button>
<button data-tab="discharges">Discharges</button>
<button data-tab="users">Users</button></nav>
<span id="alarms"></span><span class="who" id="who"></span></header>
<main>
<div id="msg" class="hidden"></div>
<section class="card hidden" id="setup"><h2>First start: create the admin account</h2>
<p>Enter the one-time setup code the manager printed on its console (the Pico W's USB
serial, or the Linux manager's log), then choose the admin's name and password
(10 characters or more).</p>
<label>Setup code</label><input id="setup-code" autocomplete="off"><br>
<label>User name</label><input id="setup-user" value="admin"><br>
<label>Password</label><input id="setup-password" type="password"><br>
<button class="act" id="setup-submit">Create admin</button></section>
<section class="card hidden" id="login"><h2>Log in</h2>
<label>User name</label><input id="login-user" autocomplete="username"><br>
<label>Password</label><input id="login-password" type="password"
autocomplete="current-password"><br>
<button class="act" id="login-submit">Log in</button></section>
<div id="app" class="hidden">
<div id="tab-status"><div class="meta"><span id="mode"></span> <span id="problems"></span></div>
<div id="strings"></div></div>
<div id="tab-actions" class="hidden"><section class="card"><h2>Alarm</h2>
<button class="act admin" id="action-mute">Mute buzzer</button> <span id="buzzer"></span>
</section><section class="card"><h2>Ri</h2>
<button class="act admin" id="action-ri-now">Measure Ri now (one round)</button>
<button class="act admin" id="action-rebaseline-all">Re-learn every Ri baseline</button>
</section><div id="string-actions"></div></div>
<div id="tab-config" class="hidden"><section class="card"><h2>Thresholds</h2>
<p>Empty: the chemistry profile's value (shown in grey). Saved thresholds apply at once;
other changes when the manager restarts.</p><form id="thresholds"></form>
<button class="act admin" id="config-save">Save thresholds</button></section>
<section class="card"><h2>Whole configuration (site.json)</h2>
<p id="config-source"></p><textarea id="config-text" spellcheck="false"></textarea>
<button class="act admin" id="config-save-all">Check and save</button></section></div>
<div id="tab-events" class="hidden"><section class="card"><h2>Events</h2>
<p><a id="history-csv" class="hidden" href="/api/history.csv" download>Download the history (CSV)</a>
<a id="history-bin" class="hidden" href="/api/history.bin" download>Download the history store
image (read it with <code>stringcare history</code>)</a></p>
<label>Text contains</label><input id="ev-text"><br><label>String</label>
<select id="ev-string"><option value="">all</option></select><br>
<label>Kind</label><select id="ev-kind"><option value="">all</option>
<option value="alarm">alarms</option><option value="warning">warnings</option>
<option value="operator">operator changes</option></select>
<table class="ev"><thead><tr><th class="l">Time</th><th class="l">Event</th></tr></thead>
<tbody id="ev-rows"></tbody></table></section></div>
<div id="tab-module" class="hidden"><section class="card"><h2 id="mod-title">Module</h2>
<p id="mod-hint">Click a module in the status table.</p><table id="mod-table"></table>
<button class="act admin hidden" id="action-rebaseline-one">Re-learn this module's Ri baseline
</button></section><section class="card"><h2>Ri</h2><table id="mod-ri"></table>
<p id="mod-hist-note"></p><svg id="mod-ri-chart" width="600" height="120" class="hidden"></svg>
<svg id="mod-v-chart" width="600" height="120" class="hidden"></svg>
<svg id="mod-t-chart" width="600" height="120" class="hidden"></svg></section>
<section class="card"><h2>Calibration (read at the census and daily)</h2>
<table id="mod-cal"></table></section></div>
<div id="tab-addressing" class="hidden"><section class="card"><h2>Addressing</h2>
<p>Setup mode: polling stops while a job runs and starts again when it is done.</p>
<p id="addr-state">No addressing job started here.</p>
<label>Automatic: from address</label><input id="addr-start" type="number" min="1" value="1">
to <input id="addr-end" type="number" min="1" value="16">
<button class="act admin" id="addr-auto">Start automatic addressing</button>
<button class="act admin" id="addr-stop">Stop</button><br>
<label>One module on the bus: address</label><input id="addr-current" type="number" min="0">
to <input id="addr-new" type="number" min="1">
<button class="act admin" id="addr-set">Set address</button>
<button class="act admin" id="addr-query">Ask its address</button><br>
<label>Module address</label><input id="addr-one" type="number" min="1">
<button class="act admin" id="addr-identify">Identify (blink)</button>
<button class="act admin" id="addr-reset">Reset to 0 (empty: all)</button>
</section></div>
<div id="tab-charts" class="hidden"><section class="card"><h2>History</h2>
<p>Voltage, temperature, Ri and string current from the manager's history store, with the
thresholds drawn (Linux manager and simulator). <button class="act" id="chart-reload">Redraw
</button></p><img id="chart" alt="history charts" style="max-width:100%"></section></div>
<div id="tab-discharges" class="hidden"><section class="card"><h2>Discharges</h2>
<p>From the history store: each discharge, and every block of each string at the string's
deepest point.</p><div id="dis-list"></div></section></div>
<div id="tab-users" class="hidden"><section class="card"><h2>Your password</h2>
<label>Old password</label><input id="pw-old" type="password" autocomplete="current-password"><br>
<label>New password</label><input id="pw-new" type="password" autocomplete="new-password"><br>
<button class="act" id="pw-change">Change my password</button></section>
<section class="card"><h2>Users</h2><table id="user-rows"></table></section>
<section class="card"><h2>Add a user</h2>
<label>User name</label><input id="user-name"><br><label>Role</label>
<select id="user-role"><option>viewer</option><option>admin</option></select><br>
<label>Password</label><input id="user-password" type="password"><br>
<button class="act admin" id="user-add">Add user</button></section></div>
</div></main>
<script src="/app.js"></script>
</body></html>
"""

APP_JS = r"""'use strict';
const $ = id => document.getElementById(id);
let me = {}, feats = [], snap = null, cfg = null, selected = null, evs = [], evSeq = 0, stream = null;
const sortState = {}; let lastJob = null;
function esc(s) { return String(s).replace(/[&<>"']/g,
  c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c])); }
function fmt(x, scale, d) { return (x === null || x === undefined) ? '\u2014'
  : (x / scale).toFixed(d); }
function say(text, good) { const m = $('msg'); m.textContent = text;
  m.className = good ? 'good' : 'bad'; }
async function call(method, url, body) {
  const h = {}; if (body !== undefined) h['Content-Type'] = 'application/json';
  if (me.csrf) h['X-CSRF-Token'] = me.csrf;
  const r = await fetch(url, {method, headers: h, cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body)});
  let j = {}; try { j = await r.json(); } catch (e) {}
  j.status = r.status; return j; }
const COLS = [['label','#',null],['v','Voltage V',1e6],['t','Temp \u00b0C',1e3],
  ['ri','Ri m\u03a9',1e6],['bal','Balancing %',1],['state','State',null]];
const IDX = {i:0,label:1,addr:2,v:3,t:4,ri:5,bal:6,state:7};
function stateClass(s) { return ({ok:'ok',warning:'warning',alarm:'alarm',silent:'silent'})[s]
  || 'unknown'; }
function renderString(st, k) {
  const sort = sortState[k] || {col:'label', dir:1}, ci = IDX[sort.col];
  const rows = st.modules.slice().sort((a, b) => {
    let x = a[ci], y = b[ci]; if (sort.col === 'label') { x = a[0]; y = b[0]; }
    if (x === null) return 1; if (y === null) return -1;
    return (x < y ? -1 : x > y ? 1 : 0) * sort.dir; });
  let h = `<section class="card string" id="string-${k+1}"><h2>String ${k+1}</h2>`;
  h += `<div class="summary"><span>Sum <b>${fmt(st.sum_mv,1e3,2)} V</b></span>`;
  h += st.equalising ? `<span>Target <b>${fmt(st.target_uv,1e6,3)} V</b></span>`
    : `<span>Average <b>${fmt(st.average_mv,1e3,3)} V</b></span>`;
  h += `<span>Spread ${st.spread_mv} mV</span><span>Current ${fmt(st.current_ma,1e3,2)} A</span>`;
  h += `<span>Power ${st.power_w === null ? '\u2014' : st.power_w} W</span>`;
  h += `<span class="eq">${st.equalising ? 'equalising' : 'not equalising: ' + esc(st.reason)}</span>`;
  if (st.bleed_mwh_day !== null) h += `<span>Bleed ${fmt(st.bleed_mwh_day,1e3,2)} Wh/day</span>`;
  if (st.runaway_tripped) h += `<span class="alarmtext">thermal runaway trip</span>`;
  h += `</div><table data-string="${k}"><thead><tr>`;
  for (const [key, name] of COLS) {
    const cls = (key === 'label' ? 'l ' : '') + (sort.col === key ? (sort.dir > 0 ? 'asc' : 'desc') : '');
    h += `<th class="${cls}" data-col="${key}">${name}</th>`; }
  h += '</tr></thead><tbody>';
  for (const m of rows) {
    h += `<tr class="module" data-i="${m[0]}" data-label="${esc(m[1])}"><td class="l">${esc(m[1])}</td>`;
    h += `<td class="v">${fmt(m[3],1e6,3)}</td><td>${fmt(m[4],1e3,1)}</td><td>${fmt(m[5],1e6,2)}</td>`;
    const pct = m[6] === null ? 0 : m[6];
    h += `<td><span class="bar" style="width:${pct*0.6}px"></span> ${m[6] === null ? '\u2014' : m[6]}</td>`;
    h += `<td class="l"><span class="chip ${stateClass(m[7])}"></span>${esc(m[7])}</td></tr>`; }
  return h + '</tbody></table></section>'; }
function findModule(i) { if (!snap) return null;
  for (const st of snap.strings) for (const m of st.modules) if (m[0] === i) return m; return null; }
function render() {
  const s = snap; if (!s || !s.strings) return;
  $('site').textContent = '\u2014 ' + s.site;
  $('mode').textContent = 'manager ' + s.mode + (s.refusal ? ': ' + s.refusal : '');
  $('problems').textContent = s.problems.join('; ');
  const a = $('alarms'); a.textContent = `${s.alarms} alarm(s), ${s.warnings} warning(s)`;
  a.className = s.alarms ? 'alarmtext' : '';
  $('strings').innerHTML = s.strings.map(renderString).join('');
  document.querySelectorAll('#strings th[data-col]').forEach(th => th.onclick = () => {
    const k = th.closest('table').dataset.string, col = th.dataset.col;
    const cur = sortState[k] || {col:'label', dir:1};
    sortState[k] = {col, dir: cur.col === col ? -cur.dir : 1}; render(); });
  document.querySelectorAll('#strings tr.module').forEach(tr => tr.onclick = () => {
    selected = Number(tr.dataset.i); show('module'); });
  $('buzzer').textContent = s.buzzer ? 'buzzer sounding' : (s.muted ? 'muted' : 'buzzer quiet');
  let sa = '';
  s.strings.forEach((st, k) => {
    sa += `<section class="card"><h2>String ${k+1}</h2>equalising is ` +
      `<b id="eq-state-${k+1}">${st.equalise_enabled ? 'on' : 'off'}</b> ` +
      `<button class="act admin" data-act="equalise_on" data-string="${k}">Equalising on</button>` +
      `<button class="act admin" data-act="equalise_off" data-string="${k}">Equalising off</button>` +
      `<button class="act admin" data-act="runaway_reset" data-string="${k}">Reset runaway trip</button>` +
      `</section>`; });
  if ($('string-actions').dataset.n !== String(s.strings.length) || true) {
    $('string-actions').innerHTML = sa; $('string-actions').dataset.n = s.strings.length;
    document.querySelectorAll('#string-actions button').forEach(b => b.onclick = () =>
      act(b.dataset.act, {string: Number(b.dataset.string)})); }
  const sel = $('ev-string'); if (sel.options.length !== s.strings.length + 1) {
    sel.innerHTML = '<option value="">all</option>' + s.strings.map((_, k) =>
      `<option value="${k+1}">${k+1}</option>`).join(''); }
  const j = s.setup; if (j) { let t = `${j.job}: ${j.done ? 'done' : 'running'}`;
    if (j.progress) t += ', ' + j.progress; if (j.result) t += ', result ' + j.result;
    if (j.warning) t += '; ' + j.warning;
    if (j.error) t += '; ERROR: ' + j.error;
    if (j.done && j.resume_at !== null && j.job === 'AutoAddressing' && !/resume at/.test(t)) {
      t += '; resume at ' + j.resume_at; }
    const key = `${j.job} ${j.done} ${j.resume_at}`;
    if (j.done && j.resume_at !== null && key !== lastJob) $('addr-start').value = j.resume_at;
    lastJob = key; $('addr-state').textContent = t; }
  renderModule(); roleGate(); renderThresholdDefaults();
  document.body.dataset.ready = '1'; }
function renderModule() {
  const m = selected === null ? null : findModule(selected);
  if (!m) return;
  $('mod-title').textContent = 'Module ' + m[1]; $('mod-hint').classList.add('hidden');
  const rows = [['Label', m[1]], ['Bus address', m[2]], ['State', m[7]],
    ['Voltage', fmt(m[3],1e6,4) + ' V'], ['Temperature', fmt(m[4],1e3,2) + ' \u00b0C'],
    ['Ri', fmt(m[5],1e6,3) + ' m\u03a9'], ['Balancing', (m[6] === null ? '\u2014' : m[6]) + ' %'],
    ['Hardware revision', m[8]], ['Firmware (major)', m[9]], ['Variant code', m[10]]];
  $('mod-table').innerHTML = rows.map(r => `<tr><td class="l">${r[0]}</td><td class="l">${esc(r[1])}</td></tr>`).join('');
  $('action-rebaseline-one').classList.remove('hidden'); }
async function loadModule() { if (selected === null) return;
  const r = await call('GET', '/api/module?i=' + selected); if (!r.row) return;
  const ri = r.ri || {}, pct = x => x === undefined || x === -32768 || !ri.last_nohm
    ? '\u2014' : x + ' %';
  $('mod-ri').innerHTML = [['Last result', fmt(ri.last_nohm,1e6,3) + ' m\u03a9'],
    ['Baseline', fmt(ri.baseline_nohm,1e6,3) + ' m\u03a9 (' + (ri.baseline_results || 0) + ' results)'],
    ['Rise over the baseline', pct(ri.rise_pct)], ['Over the string median', pct(ri.over_string_pct)],
    ['Block uid', r.uid || '\u2014'], ['Refused commands', r.refusals]].map(x =>
    `<tr><td class="l">${x[0]}</td><td class="l">${esc(x[1])}</td></tr>`).join('');
  $('mod-cal').innerHTML = '<tr><th class="l">Channel</th><th>Offset</th><th>Gain ppm</th></tr>' +
    (r.calibration.length ? r.calibration.map(c => `<tr class="cal"><td class="l">${c[0]}</td>` +
    `<td>${c[1]}</td><td>${c[2]}</td></tr>`).join('') : '<tr><td class="l">not read yet</td></tr>');
  const h = r.ri_history || [];
  $('mod-hist-note').textContent = r.ri_history_problem ? 'History: ' + r.ri_history_problem :
    !h.length ? (r.ri_history ? 'No history stored for this module yet.' : '') :
    'History ' + when(h[0][0]).slice(0, 16) + ' to ' + when(h[h.length-1][0]).slice(0, 16) + ' UTC, ' +
    h.length + ' points' +
    (h[0].length > 2 ? ' (the store\u2019s key frames: Ri, voltage, temperature)' : '');
  line('mod-ri-chart', h.filter(p => p[1] > 0).map(p => [p[0], p[1]]), 1e6, 3, 'm\u03a9', 'Ri');
  line('mod-v-chart', h.filter(p => p.length > 2 && p[2] > 0).map(p => [p[0], p[2]]), 1e3, 3,
    'V', 'Voltage');
  line('mod-t-chart', h.filter(p => p.length > 3 && p[2] > 0).map(p => [p[0], p[3]]), 1e2, 1, '\u00b0C',
    'Temperature'); }
function line(id, h, scale, d, unit, what) { const svg = $(id);
  svg.classList.toggle('hidden', h.length < 2); if (h.length < 2) return;
  const t0 = h[0][0], t1 = h[h.length-1][0] || t0 + 1, vs = h.map(p => p[1]);
  const lo = Math.min(...vs), hi = Math.max(...vs), span = (hi - lo) || Math.abs(hi) || 1;
  const pts = h.map(p => `${(10 + 580 * (p[0] - t0) / ((t1 - t0) || 1)).toFixed(1)},` +
    `${(110 - 95 * (p[1] - lo) / span).toFixed(1)}`).join(' ');
  svg.innerHTML = `<polyline fill="none" stroke="#0969da" stroke-width="1.5" points="${pts}"/>` +
    `<text x="10" y="10" font-size="10">${what}: ${fmt(hi,scale,d)} ${unit}</text>` +
    `<text x="10" y="118" font-size="10">${fmt(lo,scale,d)} ${unit}</text>`; }
async function loadDischarges() { const r = await call('GET', '/api/discharges');
  if (!r.discharges) { $('dis-list').textContent = r.error || ''; return; }
  if (!r.discharges.length) { $('dis-list').textContent = 'no discharges in the history yet'; return; }
  $('dis-list').innerHTML = r.discharges.map((d, n) => `<h3>Discharge ${n+1}: ${esc(d.start_utc)}` +
    ` to ${esc(d.end_utc)} (${d.minutes} min)</h3>` + d.strings.map(st => `<p>String ${st.string}` +
    ` deepest at ${esc(st.deepest_utc)}: ${fmt(st.sum_mv,1e3,2)} V</p><table class="discharge">` +
    `<tr>${st.blocks.map(b => `<th>${esc(b[0])}</th>`).join('')}</tr>` +
    `<tr>${st.blocks.map(b => `<td>${fmt(b[1],1e3,3)}</td>`).join('')}</tr></table>`).join('')).join(''); }
async function loadUsers() { if (me.role !== 'admin') return;
  const r = await call('GET', '/api/users'); if (!r.users) return;
  $('user-rows').innerHTML = r.users.map(u => `<tr class="user"><td class="l">${esc(u[0])}</td>` +
    `<td class="l">${esc(u[1])}</td><td><button class="act admin" data-del="${esc(u[0])}">Delete</button>` +
    `</td></tr>`).join('');
  document.querySelectorAll('#user-rows button').forEach(b => b.onclick = async () => {
    const j = await call('POST', '/api/users/delete', {user: b.dataset.del});
    say(j.text || j.error, j.ok); loadUsers(); }); roleGate(); }
$('pw-change').onclick = async () => {
  const r = await call('POST', '/api/password', {old: $('pw-old').value, new: $('pw-new').value});
  say(r.text || r.error, r.ok); };
function roleGate() { const admin = me.role === 'admin';
  document.querySelectorAll('.admin').forEach(b => { b.disabled = !admin;
    b.title = admin ? '' : 'viewers may look, not change'; }); }
async function act(action, extra) {
  const r = await call('POST', '/api/action', Object.assign({action}, extra || {}));
  say(r.text || r.error || ('HTTP ' + r.status), r.ok); }
function thresholdInputs() { return document.querySelectorAll('#thresholds input'); }
function renderThresholdDefaults() { if (!snap) return;
  thresholdInputs().forEach(inp => { let v = snap.thresholds[inp.name];
    if (v !== undefined && Math.abs(v) >= (inp.name.endsWith('_mv') ? 1073741 : 1073741822)) v = 'off';
    inp.placeholder = v === undefined ? 'profile' : v;
    const cur = $('th-now-' + inp.name); if (cur) cur.textContent = v === undefined ? '' : 'in force: ' + v; }); }
async function loadConfig() {
  cfg = await call('GET', '/api/config');
  const t = (cfg.config && cfg.config.thresholds) || {};
  $('thresholds').innerHTML = cfg.fields.map(([key, lo, hi]) =>
    `<label for="th-${key}">${key}</label><input name="${key}" id="th-${key}" type="number" ` +
    `min="${lo}" max="${hi}" value="${t[key] === undefined ? '' : t[key]}"> ` +
    `<small id="th-now-${key}"></small><br>`).join('');
  $('config-text').value = JSON.stringify(cfg.config, null, 1);
  $('config-source').textContent = (cfg.source ? 'in use: ' + cfg.source + '. ' : '') +
    cfg.problems.join('; ');
  renderThresholdDefaults(); roleGate(); }
async function saveConfig(obj) {
  const r = await call('POST', '/api/config', {config: obj});
  say(r.text || r.error || ('HTTP ' + r.status), r.ok);
  if (r.ok) await loadConfig(); }
$('config-save').onclick = () => { if (!cfg || !cfg.config) return;
  const obj = JSON.parse(JSON.stringify(cfg.config)); const t = obj.thresholds || {};
  thresholdInputs().forEach(inp => { if (inp.value === '') delete t[inp.name];
    else t[inp.name] = Number(inp.value); });
  obj.thresholds = t; saveConfig(obj); };
$('config-save-all').onclick = () => { let obj;
  try { obj = JSON.parse($('config-text').value); }
  catch (e) { say('site.json is not valid JSON: ' + e.message, false); return; }
  saveConfig(obj); };
$('action-mute').onclick = () => act('mute');
$('action-ri-now').onclick = () => act('ri_now');
$('action-rebaseline-all').onclick = () => act('rebaseline', {module: -1});
$('action-rebaseline-one').onclick = () => act('rebaseline', {module: selected});
const num = id => $(id).value === '' ? undefined : Number($(id).value);
$('addr-auto').onclick = () => act('address_auto', {start: num('addr-start'), end: num('addr-end')});
$('addr-stop').onclick = () => act('address_stop');
$('addr-set').onclick = () => act('address_set', {current: num('addr-current'), new: num('addr-new')});
$('addr-query').onclick = () => act('address_query');
$('addr-identify').onclick = () => act('identify', {address: num('addr-one')});
$('addr-reset').onclick = () => act('address_reset', {address: num('addr-one')});
$('chart-reload').onclick = () => { $('chart').src = '/api/history.png?t=' + Date.now(); };
$('user-add').onclick = async () => {
  const r = await call('POST', '/api/users', {user: $('user-name').value,
    role: $('user-role').value, password: $('user-password').value});
  say(r.text || r.error, r.ok); loadUsers(); };
function kindOf(e) { const t = e[5];
  if (e[2] === 28 || /^by /.test(t) || / by [\w.-]+$/.test(t)) return 'operator';
  if (/ alarm/.test(t)) return 'alarm'; if (/warning/.test(t)) return 'warning'; return ''; }
function renderEvents() {
  const text = $('ev-text').value.toLowerCase(), s = $('ev-string').value, kind = $('ev-kind').value;
  const rows = evs.filter(e => (!text || e[5].toLowerCase().includes(text)) &&
    (!s || e[4] === Number(s) - 1) && (!kind || kindOf(e) === kind)).reverse();
  $('ev-rows').innerHTML = rows.map(e => `<tr class="event"><td>${esc(/^\d+$/.test(e[1]) ? when(+e[1]) + ' UTC' : e[1])}</td><td>${esc(e[5])}</td></tr>`).join(''); }
function when(t) { return new Date((t + 1577836800) * 1000).toISOString().slice(0, 19).replace('T', ' '); }
['ev-text', 'ev-string', 'ev-kind'].forEach(id => $(id).oninput = renderEvents);
async function loadEvents() { const r = await call('GET', '/api/events?since=' + evSeq);
  if (r.events && r.events.length) { evs = evs.concat(r.events).slice(-500);
    evSeq = evs[evs.length - 1][0]; renderEvents(); } }
function show(tab) {
  document.querySelectorAll('#tabs button').forEach(b => b.classList.toggle('on', b.dataset.tab === tab));
  if (tab === 'charts') $('chart').src = '/api/history.png?t=' + Date.now();
  ['status','actions','config','events','module','addressing','charts','discharges','users'].forEach(
    t => $('tab-' + t).classList.toggle('hidden', t !== tab));
  if (tab === 'config') loadConfig(); if (tab === 'events') loadEvents();
  if (tab === 'module') loadModule(); if (tab === 'discharges') loadDischarges();
  if (tab === 'users') loadUsers(); renderModule(); }
document.querySelectorAll('#tabs button').forEach(b => b.onclick = () => show(b.dataset.tab));
async function poll() { const r = await call('GET', '/api/status');
  if (r.strings) { snap = r; render(); } }
function live() {
  if (window.EventSource) {
    stream = new EventSource('/api/stream');
    stream.addEventListener('status', ev => { snap = JSON.parse(ev.data); render(); });
    stream.addEventListener('changed', () => poll());
    stream.onerror = () => { stream.close(); setTimeout(live, 2000); poll(); };
  } else setInterval(poll, 2000);
  setInterval(loadEvents, 3000); }
function enter(j) { me = j; $('setup').classList.add('hidden'); $('login').classList.add('hidden');
  $('app').classList.remove('hidden');
  $('who').innerHTML = `${esc(j.user)} (${esc(j.role)}) <button class="act" id="logout">Log out</button>`;
  $('logout').onclick = async () => { await call('POST', '/api/logout', {}); location.reload(); };
  for (const [id, what] of [['history-csv','csv'], ['history-bin','bin']])
    $(id).classList.toggle('hidden', !feats.includes(what));
  for (const [t, what] of [['charts','png'], ['discharges','discharges']])
    document.querySelector(`#tabs button[data-tab="${t}"]`).classList.toggle('hidden', !feats.includes(what));
  poll(); live(); loadEvents(); }
$('login-submit').onclick = async () => {
  const r = await call('POST', '/api/login', {user: $('login-user').value,
    password: $('login-password').value});
  if (r.ok) { $('msg').className = 'hidden'; enter(r); } else say(r.error, false); };
$('login-password').onkeydown = e => { if (e.key === 'Enter') $('login-submit').click(); };
$('setup-submit').onclick = async () => {
  const r = await call('POST', '/api/setup', {code: $('setup-code').value,
    user: $('setup-user').value, password: $('setup-password').value});
  if (r.ok) { say('admin ' + r.user + ' created', true); enter(r); } else say(r.error, false); };
(async () => { const j = await call('GET', '/api/me'); feats = j.history || [];
  if (j.problem) say(j.problem, false);
  if (j.user) enter(j); else if (j.setup) $('setup').classList.remove('hidden');
  else $('login').classList.remove('hidden'); })();
"""
