// The Trellis dashboard page: no framework, no build step. It opens one server-sent event stream
// (/events): a snapshot, then a `view` on every lattice change and a `traffic` tick every second,
// and re-renders the section each one touches. Everything shown is escaped text.

const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const PALETTE = ['#3b7ddd', '#a06ef0', '#d9822b', '#2f9e55', '#d45a9c', '#1b9aaa', '#b8a01e', '#7a8699'];
const CHART_POINTS = 60;

const state = {
  view: undefined,
  /** `actor@version` → { actor, version, t[], rps[], errorRate[], p99Ms[] } */
  series: new Map(),
  /** `actor@version` → latest numbers with totals */
  latest: new Map(),
  /** participant (host id) → requests/s */
  load: {},
  groupBy: new URLSearchParams(location.search).get('group') || localStorage.getItem('trellis.groupBy') || '',
  seenEvents: new Set(),
};

// ---------- formatting ----------
const fmtRate = (n) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2).replace(/\.?0+$/, '') || '0');
const fmtMs = (n) => (n == null ? '–' : n >= 1000 ? `${(n / 1000).toFixed(2)} s` : n >= 10 ? `${n.toFixed(0)} ms` : `${n.toFixed(1)} ms`);
const fmtPct = (n) => (n == null ? '–' : n === 0 ? '0 %' : n < 0.001 ? '<0.1 %' : `${(n * 100).toFixed(n < 0.1 ? 1 : 0)} %`);
const fmtCount = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : String(n));
function fmtUptime(startedAt) {
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(startedAt)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}
const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour12: false });
const cmpVersion = (a, b) => a.localeCompare(b, undefined, { numeric: true });

// ---------- version colours: one per actor version, the same in every section ----------
function versionColours() {
  const versions = new Map();
  const add = (actor, version) => {
    if (!versions.has(actor)) versions.set(actor, new Set());
    versions.get(actor).add(version);
  };
  const v = state.view;
  for (const h of v?.hosts ?? []) for (const a of h.actors) add(a.name, a.version);
  for (const w of v?.weights ?? []) for (const ver of Object.keys(w.weights)) add(w.actor, ver);
  for (const c of v?.canaries ?? []) (add(c.actor, c.stable), add(c.actor, c.canary));
  for (const s of state.series.values()) add(s.actor, s.version);
  const colours = new Map();
  for (const [actor, set] of versions) [...set].sort(cmpVersion).forEach((ver, i) => colours.set(`${actor}@${ver}`, PALETTE[i % PALETTE.length]));
  return colours;
}
let colours = new Map();
const vc = (actor, version) => colours.get(`${actor}@${version}`) ?? PALETTE[7];
const verPill = (actor, version) => `<span class="ver" data-vc="${vc(actor, version)}">${esc(version)}</span>`;

/** The page's CSP allows no inline styles: colours and widths travel in data attributes. */
function applyStyles(root) {
  for (const el of root.querySelectorAll('[data-vc]')) el.style.setProperty('--vc', el.dataset.vc);
  for (const el of root.querySelectorAll('[data-grow]')) el.style.flexGrow = el.dataset.grow;
  for (const el of root.querySelectorAll('[data-width]')) el.style.width = `${el.dataset.width}%`;
}
function setHtml(id, html) {
  const el = $(id);
  el.innerHTML = html;
  applyStyles(el);
}

// ---------- hosts ----------
function groupKeys(hosts) {
  const keys = new Set();
  for (const h of hosts) for (const k of Object.keys(h.labels)) keys.add(k);
  return [...keys].sort();
}
function chosenGroup(hosts) {
  const keys = groupKeys(hosts);
  if (state.groupBy && (keys.includes(state.groupBy) || state.groupBy === '(none)')) return state.groupBy;
  return ['cloud', 'region', 'zone'].find((k) => keys.includes(k)) ?? keys[0] ?? '(none)';
}
function renderGroupSelect(hosts, key) {
  const select = $('group-by');
  const options = [...new Set([...groupKeys(hosts), key])].filter((k) => k !== '(none)');
  const html = [...options.map((k) => `<option value="${esc(k)}"${k === key ? ' selected' : ''}>${esc(k)}</option>`), `<option value="(none)"${key === '(none)' ? ' selected' : ''}>nothing</option>`].join('');
  if (select.dataset.html !== html) (select.innerHTML = html), (select.dataset.html = html);
}
$('group-by').addEventListener('change', (e) => {
  state.groupBy = e.target.value;
  localStorage.setItem('trellis.groupBy', state.groupBy);
  renderHosts();
});

function hostCard(h) {
  const rps = state.load[h.id] ?? 0;
  const actors = h.actors.length
    ? `<ul class="actors">${h.actors.map((a) => `<li data-actor="${esc(a.name)}" data-version="${esc(a.version)}"><span class="n">${esc(a.name)}</span>${verPill(a.name, a.version)}<span class="x">×${a.instances}</span></li>`).join('')}</ul>`
    : '<p class="empty">no actors</p>';
  const labels = Object.entries(h.labels).map(([k, v]) => `<span class="chip">${esc(k)}=${esc(v)}</span>`).join('');
  const providers = h.providers.map((p) => `<span class="chip" title="${esc(p.health)}">${esc(p.name)}${p.health === 'ok' ? '' : ` (${esc(p.health)})`}</span>`).join('');
  return `<article class="host" data-host-id="${esc(h.id)}" data-health="${esc(h.health)}">
    <div class="host-head"><div><div class="host-name">${esc(h.name)}</div><div class="host-id">${esc(h.id.slice(0, 12))}… · v${esc(h.version)}</div></div><span class="badge ${esc(h.health)}">${esc(h.health)}</span></div>
    ${h.reason ? `<div class="reason">${esc(h.reason)}</div>` : ''}
    <div class="stats">
      ${h.health === 'ok' || h.health === 'late' ? `<div><b data-uptime="${esc(h.startedAt)}">${fmtUptime(h.startedAt)}</b><span>uptime</span></div>` : `<div><b>–</b><span>uptime</span></div>`}
      <div><b class="load">${fmtRate(rps)}</b><span>req/s served</span></div>
      <div><b>${h.instances}</b><span>instances</span></div>
    </div>
    ${actors}
    <div class="chips">${labels}${providers}</div>
  </article>`;
}

function renderHosts() {
  const hosts = state.view?.hosts ?? [];
  const key = chosenGroup(hosts);
  renderGroupSelect(hosts, key);
  if (hosts.length === 0) return setHtml('hosts', '<p class="empty">no hosts in this lattice yet</p>');
  const groups = new Map();
  for (const h of hosts) {
    const g = key === '(none)' ? 'all hosts' : h.labels[key] ?? `no ${key}`;
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g).push(h);
  }
  const ordered = [...groups].sort(([a], [b]) => a.localeCompare(b));
  setHtml('hosts', ordered.map(([g, list]) => {
    const up = list.filter((h) => h.health === 'ok').length;
    const title = key === '(none)' ? esc(g) : `<span class="key">${esc(key)}</span> ${esc(g)}`;
    return `<div class="group" data-group="${esc(g)}"><div class="group-head"><h3>${title}</h3><span>${list.length} host${list.length === 1 ? '' : 's'} · ${up} healthy</span></div><div class="cards">${list.map(hostCard).join('')}</div></div>`;
  }).join(''));
}

// ---------- traffic ----------
function spark(values, colour, { max, fixedMax } = {}) {
  const w = 120;
  const h = 30;
  const pts = values.slice(-CHART_POINTS);
  const top = fixedMax ?? Math.max(max ?? 0, ...pts.filter((v) => v != null), 1e-9);
  const x = (i) => (w * (i + CHART_POINTS - pts.length)) / (CHART_POINTS - 1);
  const y = (v) => h - 2 - ((h - 4) * v) / top;
  let line = '';
  let area = '';
  let run = [];
  const flush = () => {
    if (run.length === 0) return;
    line += `M${run.map(([i, v]) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join('L')}`;
    area += `M${x(run[0][0]).toFixed(1)},${h}L${run.map(([i, v]) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join('L')}L${x(run.at(-1)[0]).toFixed(1)},${h}Z`;
    run = [];
  };
  pts.forEach((v, i) => (v == null ? flush() : run.push([i, v])));
  flush();
  // A flat zero (no errors) reads better as a faint baseline than as a coloured line.
  const flat = pts.every((v) => !v);
  const base = `<path class="base" d="M0,${h - 1}L${w},${h - 1}"/>`;
  return `<svg class="spark" viewBox="0 0 ${w} ${h}" preserveAspectRatio="none" aria-hidden="true">${base}${flat ? '' : `<path class="area" d="${area}" fill="${colour}"/><path class="line" d="${line}" stroke="${colour}"/>`}</svg>`;
}

function renderTraffic() {
  const rows = [...state.series.values()].sort((a, b) => a.actor.localeCompare(b.actor) || cmpVersion(a.version, b.version));
  if (rows.length === 0) return setHtml('traffic', '<p class="empty">no traffic yet: requests through the gateway or `trellis invoke` show here within a second or two</p>');
  const head = '<div class="th">actor version</div><div class="th">requests / s</div><div class="th">error rate</div><div class="th">p99 latency</div><div class="th total">total</div>';
  const body = rows.map((s) => {
    const k = `${s.actor}@${s.version}`;
    const l = state.latest.get(k) ?? { rps: s.rps.at(-1) ?? 0, errorRate: s.errorRate.at(-1), p99Ms: s.p99Ms.at(-1), requests: 0, failures: 0 };
    const colour = vc(s.actor, s.version);
    const err = l.errorRate;
    return `<div class="who" data-traffic="${esc(k)}"><span>${esc(s.actor)}</span>${verPill(s.actor, s.version)}</div>
      <div class="metric">${spark(s.rps, colour)}<b class="rps">${fmtRate(l.rps)}</b></div>
      <div class="metric">${spark(s.errorRate, '#f85149', { max: 0.05 })}<b class="${err > 0.01 ? 'bad' : ''}">${fmtPct(err)}</b></div>
      <div class="metric">${spark(s.p99Ms, '#a371f7')}<b>${fmtMs(l.p99Ms)}</b></div>
      <div class="total" data-total="${esc(k)}" data-requests="${l.requests}"><b>${fmtCount(l.requests)}</b>${l.failures ? `${fmtCount(l.failures)} failed` : 'req'}</div>
      <div class="row-sep"></div>`;
  }).join('');
  setHtml('traffic', `<div class="traffic">${head}${body}</div>`);
}

// ---------- weights ----------
function renderWeights() {
  const weights = state.view?.weights ?? [];
  if (weights.length === 0) return setHtml('weights', '<p class="empty">no weights set: the newest live version takes every call</p>');
  setHtml('weights', weights.map((w) => {
    const parts = Object.entries(w.weights).sort(([a], [b]) => cmpVersion(a, b));
    const sticky = w.sticky ? ` · sticky ${esc(w.sticky.header ? `header ${w.sticky.header}` : `cookie ${w.sticky.cookie}`)}` : '';
    return `<div class="wrow" data-weights-actor="${esc(w.actor)}" data-weights="${esc(parts.map(([v, p]) => `${v}=${p}`).join(' '))}">
      <div class="whead">${esc(w.actor)}<span>${clock(w.updatedAt)}${sticky}</span></div>
      <div class="bar">${parts.filter(([, p]) => p > 0).map(([v, p]) => `<div data-grow="${p}" data-vc="${vc(w.actor, v)}" title="${esc(v)}: ${p}%">${esc(v)} ${p}%</div>`).join('')}</div>
    </div>`;
  }).join(''));
}

// ---------- canaries ----------
const GOOD = new Set(['step', 'promoted', 'resumed', 'started', 'restarted']);
const BAD = new Set(['failed-check', 'rolled-back', 'aborted']);
function renderCanaries() {
  const canaries = state.view?.canaries ?? [];
  $('canaries-panel').hidden = canaries.length === 0;
  if (canaries.length === 0) return setHtml('canaries', '');
  setHtml('canaries', canaries.map((c) => {
    const steps = c.steps.map((pct, i) => {
      const n = i + 1;
      const cls = n < c.step || (n === c.step && c.phase === 'Promoted') ? 'done' : n === c.step ? 'now' : '';
      return `${i ? `<div class="step-line ${n <= c.step ? 'done' : ''}"></div>` : ''}<div class="step ${cls}"><i></i>${pct}%</div>`;
    }).join('');
    const w = c.window;
    const num = (s, f) => (s.requests ? f(s) : '–');
    const nums = `<div class="cnums"><span class="h"></span><span class="h">${verPill(c.actor, c.stable)} stable</span><span class="h">${verPill(c.actor, c.canary)} canary</span>
      <span class="h">requests</span><span>${w.stable.requests}</span><span>${w.canary.requests}</span>
      <span class="h">success</span><span>${num(w.stable, (s) => fmtPct(s.successRate))}</span><span>${num(w.canary, (s) => fmtPct(s.successRate))}</span>
      <span class="h">p99</span><span>${fmtMs(w.stable.p99Ms)}</span><span>${fmtMs(w.canary.p99Ms)}</span></div>`;
    const history = c.history.slice().reverse().map((h) => `<li><time>${clock(h.at)}</time><span class="d ${BAD.has(h.decision) ? 'bad' : GOOD.has(h.decision) ? 'good' : ''}">${esc(h.decision)}</span><span class="r" title="${esc(h.reason)}">${esc(h.reason)}</span></li>`).join('');
    return `<div class="canary" data-canary="${esc(c.actor)}" data-phase="${esc(c.phase)}" data-step="${c.step}">
      <div class="canary-head"><b>${esc(c.actor)} ${verPill(c.actor, c.stable)} → ${verPill(c.actor, c.canary)}</b><span class="badge ${esc(c.phase)}">${esc(c.phase)}</span></div>
      <div class="steps">${steps}</div>
      <div class="cweight">canary weight <b>${c.weight.set}%</b>${c.weight.actual != null ? ` (measured ${Math.round(c.weight.actual)}%)` : ''} · failed checks <b class="${c.failedChecks ? 'bad' : ''}">${c.failedChecks}/${c.failureLimit}</b></div>
      ${nums}
      <ol class="history">${history}</ol>
    </div>`;
  }).join(''));
}

// ---------- apps ----------
function renderApps() {
  const apps = state.view?.apps ?? [];
  if (apps.length === 0) return setHtml('apps', '<p class="empty">no apps: `trellis apply -f app.yaml` deploys one</p>');
  setHtml('apps', apps.map((a) => `<div class="app" data-app="${esc(a.name)}" data-phase="${esc(a.phase)}">
    <div class="app-head"><span><b>${esc(a.name)}</b><span class="rev">rev ${a.revision}</span></span><span class="badge ${esc(a.phase)}">${esc(a.phase)}</span></div>
    ${a.actors.map((x) => {
      const pct = x.desired > 0 ? Math.min(100, (100 * x.running) / x.desired) : x.running > 0 ? 100 : 0;
      return `<div class="arow" data-app-actor="${esc(x.name)}@${esc(x.version)}"><span>${esc(x.name)} ${verPill(x.name, x.version)}</span><div class="meter ${x.running < x.desired ? 'short' : ''}"><div data-width="${pct.toFixed(0)}"></div></div><span class="c">${x.running}/${x.desired}</span></div>`;
    }).join('')}
    ${a.reasons.length ? `<div class="why">${esc(a.reasons[0])}</div>` : ''}
  </div>`).join(''));
}

// ---------- events ----------
function renderEvents() {
  const events = state.view?.events ?? [];
  if (events.length === 0) return setHtml('events', '<li class="empty">no events yet</li>');
  const first = state.seenEvents.size === 0;
  setHtml('events', events.slice(0, 60).map((e) => {
    const fresh = !first && !state.seenEvents.has(e.id);
    return `<li data-event-kind="${esc(e.kind)}" data-level="${esc(e.level)}"${fresh ? ' class="fresh"' : ''}><time>${clock(e.time)}</time><i></i><span><span class="k">${esc(e.kind)}</span>${esc(e.summary)}</span></li>`;
  }).join(''));
  for (const e of events) state.seenEvents.add(e.id);
}

// ---------- header ----------
function renderTotals() {
  const v = state.view;
  if (!v) return;
  $('lattice').textContent = `lattice ${v.lattice}`;
  document.title = `Trellis · ${v.lattice}`;
  const healthy = v.hosts.filter((h) => h.health === 'ok').length;
  const versions = new Set(v.hosts.flatMap((h) => h.actors.map((a) => `${a.name}@${a.version}`)));
  let rps = 0;
  for (const l of state.latest.values()) rps += l.rps;
  setHtml('totals', [
    [`${healthy}/${v.hosts.length}`, 'hosts healthy'],
    [versions.size, 'actor versions'],
    [fmtRate(rps), 'requests / s'],
    [v.apps.length, 'apps'],
  ].map(([b, s]) => `<div><b>${esc(b)}</b><span>${esc(s)}</span></div>`).join(''));
}

function renderAll() {
  colours = versionColours();
  renderTotals();
  renderHosts();
  renderTraffic();
  renderWeights();
  renderCanaries();
  renderApps();
  renderEvents();
}

// ---------- the stream ----------
function onTraffic(tick) {
  state.load = tick.participants;
  for (const v of tick.versions) {
    const k = `${v.actor}@${v.version}`;
    let s = state.series.get(k);
    if (!s) state.series.set(k, (s = { actor: v.actor, version: v.version, t: [], rps: [], errorRate: [], p99Ms: [] }));
    s.t.push(v.t), s.rps.push(v.rps), s.errorRate.push(v.errorRate), s.p99Ms.push(v.p99Ms);
    if (s.t.length > CHART_POINTS * 2) for (const a of [s.t, s.rps, s.errorRate, s.p99Ms]) a.splice(0, a.length - CHART_POINTS);
    state.latest.set(k, v);
  }
  const live = new Set(tick.versions.map((v) => `${v.actor}@${v.version}`));
  for (const k of state.series.keys()) if (!live.has(k)) (state.series.delete(k), state.latest.delete(k));
  colours = versionColours();
  renderTotals();
  renderTraffic();
  // Only the load figures change on a tick: update them in place.
  for (const el of document.querySelectorAll('.host')) {
    const b = el.querySelector('.load');
    if (b) b.textContent = fmtRate(state.load[el.dataset.hostId] ?? 0);
  }
}

function connect() {
  const conn = $('conn');
  const status = (s, text) => ((conn.dataset.state = s), (conn.querySelector('span').textContent = text));
  const es = new EventSource('events');
  // Live means both links hold: this page to its server, and the server to NATS.
  const natsStatus = () => (state.view?.nats?.connected === false ? status('lost', `server lost NATS at ${clock(state.view.nats.since)}`) : status('live', 'live'));
  es.addEventListener('open', natsStatus);
  es.addEventListener('error', () => status('lost', 'reconnecting…'));
  es.addEventListener('snapshot', (e) => {
    const { view, series } = JSON.parse(e.data);
    state.view = view;
    state.series = new Map(series.map((s) => [`${s.actor}@${s.version}`, s]));
    state.latest = new Map();
    renderAll();
    natsStatus();
    document.body.dataset.ready = 'true';
  });
  es.addEventListener('view', (e) => {
    state.view = JSON.parse(e.data);
    renderAll();
    natsStatus();
  });
  es.addEventListener('traffic', (e) => onTraffic(JSON.parse(e.data)));
}

setInterval(() => {
  for (const el of document.querySelectorAll('[data-uptime]')) el.textContent = fmtUptime(el.dataset.uptime);
}, 1000);
connect();
