// bluegreen dashboard: polls /api/state, draws it; the buttons POST to
// /api/<verb> with the page's token (see src/cli/dashboard/actions.rs).
"use strict";

const TOKEN = document.querySelector('meta[name="bluegreen-token"]').content;
const TOKEN_HEADER = "x-bluegreen-token";
const NS = "http://www.w3.org/2000/svg";
const POLL_MS = 1000;
const SPAN_MS = 5 * 60 * 1000;
const INK = { blue: "#2563eb", green: "#16a34a", app: "#6b7280" };

function $(id) { return document.getElementById(id); }

function h(tag, cls, ...kids) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  for (const k of kids) if (k != null) e.append(k);
  return e;
}

function s(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  return e;
}

function lastPoint(series) { return series && series.length ? series[series.length - 1] : null; }

function fmtNum(v, digits) { return v == null ? "–" : Number(v).toFixed(digits); }

function weightOf(c, st) {
  const w = st.deploy && st.deploy.state === "running" && st.deploy.weights;
  if (w && c.color && w[c.color] != null) return w[c.color] + "%";
  if (!c.mapped) return "0%";
  const mapped = st.colors.filter(x => x.mapped).length;
  return Math.round(100 / mapped) + "%";
}

function renderHeader(st) {
  $("app").textContent = st.app || "";
  $("route").textContent = st.route_url ? "→ " + st.route_url : "not deployed yet";
  $("platform").textContent = st.platform === "cf" ? "Cloud Foundry" : "local platform";
  const serving = $("serving");
  serving.textContent = st.serving ? "serving" : "not serving";
  serving.className = "tag " + (st.serving ? "good" : "bad");
  $("updated").textContent = "looked at " + new Date(st.at || Date.now()).toLocaleTimeString() + " · acting as " + (st.by || "");
  const errs = $("errors");
  errs.replaceChildren(...(st.errors || []).map(e => h("li", null, e)));
  errs.hidden = !(st.errors || []).length;
}

// A color kept running off the route for `rollback` (see `status`).
function standbyOf(c) {
  const sb = c.standby;
  if (!sb || !(sb.until || sb.ended)) return [];
  const text = sb.until
    ? `release ${sb.release || "–"} ${sb.expired ? "until " + sb.until + " (over)" : "until " + sb.until}`
    : `ended at ${sb.ended}`;
  return [h("dt", null, "standby"), h("dd", "standby", text)];
}

function renderColors(st) {
  const traffic = (st.traffic && st.traffic.colors) || {};
  const cards = (st.colors || []).map(c => {
    const name = c.color || "app";
    const series = traffic[c.color || "blue"] || [];
    const p = lastPoint(series);
    const seen = series.reduce((n, x) => n + x.requests, 0);
    const procs = (c.processes || []).map(x => `${x.type} ${x.running}/${x.instances} running`).join(", ");
    const card = h("article", "card color-" + name,
      h("div", "card-head", h("span", "swatch"), h("h2", null, name), c.newest ? h("span", "tag", "newest") : null),
      h("div", "release", c.release || "–"),
      h("dl", null,
        h("dt", null, "app"), h("dd", null, c.app || ""),
        h("dt", null, "instances"), h("dd", "instances", procs || "none"),
        h("dt", null, "health"), h("dd", c.healthy ? "good-text" : "bad-text", c.healthy ? "healthy" : "not healthy"),
        h("dt", null, "route"), h("dd", "weight", (c.mapped ? "mapped · " : "unmapped · ") + weightOf(c, st)),
        h("dt", null, "traffic"), h("dd", "rate", p ? `${fmtNum(p.rps, 1)} req/s · ${seen} requests seen` : "–"),
        ...standbyOf(c)));
    card.dataset.color = name;
    card.dataset.requests = String(seen);
    return card;
  });
  $("colors").replaceChildren(...cards);
}

function renderDeploy(st) {
  const d = st.deploy;
  const box = $("deploy");
  box.hidden = !d;
  if (!d) return;
  $("deploy-title").textContent = `${d.kind || "deploy"} ${d.id}: release ${d.release}`;
  $("deploy-sub").textContent = `from ${d.previous_release || "nothing"}` +
    (d.runner ? ` · by \`${d.runner.command}\` (pid ${d.runner.pid} on ${d.runner.host})` : "") +
    (d.weights ? " · weights " + Object.entries(d.weights).map(([c, w]) => `${c} ${w}%`).join(", ") : "");
  // The analysis window under way, as the runner last judged it (one that
  // reached its verdict is among the decisions instead).
  const w = d.state === "running" && !d.paused && d.window && !d.window.deciding && d.window;
  $("window").hidden = !w;
  if (w) {
    $("window").replaceChildren(
      h("strong", null, `${w.watch ? "watching" : "analysis window"} on ${w.color}` +
        (w.percent != null ? ` at ${w.percent}%` : "") +
        `: ${(w.elapsed_ms / 1000).toFixed(1)} s in, ${(w.left_ms / 1000).toFixed(1)} s left at most`),
      ...(w.lines || []).map(l => h("div", "muted", l)));
  }
  let state = d.state;
  if (d.paused) state = d.paused;
  if (d.state === "finished" && d.finished) state = "finished: " + d.finished.result;
  const tag = $("deploy-state");
  tag.textContent = state;
  tag.className = "tag " + (d.paused ? "warn" : d.state === "running" ? "good" : "");
  const live = d.state === "running";
  $("promote").disabled = !live;
  $("abort").disabled = !live;
  $("resume").disabled = !(live && d.paused);
  const steps = (d.steps || []).map(x => {
    const li = h("li", "step " + x.state, h("span", "mark", x.state === "done" ? "✓" : x.state === "current" ? "▶" : "·"), x.text);
    if (x.state === "current" && d.paused) li.append(h("span", "tag warn", "paused"));
    li.dataset.state = x.state;
    return li;
  });
  $("steps").replaceChildren(...steps);
  const cur = $("steps").querySelector("li.current");
  if (cur && box.dataset.step !== cur.textContent) { box.dataset.step = cur.textContent; cur.scrollIntoView({ block: "nearest" }); }
  const decisions = (d.decisions || []).map(x => x.type === "control"
    ? h("li", "decision", `${x.verb} by ${x.by}` + (x.reason ? `: ${x.reason}` : ""))
    : x.type === "approval"
    ? h("li", "decision", `${x.at}: ${x.plugin} said ${x.decision}` + (x.message ? `: ${x.message}` : ""))
    : h("li", "decision verdict-" + x.verdict,
        `${x.watch ? "watch" : "analysis"} of ${x.color}${x.percent != null ? " at " + x.percent + "%" : ""}: ${x.verdict} (${x.window.candidate.requests} requests in ${(x.window.duration_ms / 1000).toFixed(1)} s) ${x.why}`));
  $("decisions").replaceChildren(...(decisions.length ? decisions : [h("li", "muted", "none yet")]));
}

function windowsOf(st) {
  const d = st.deploy;
  return ((d && d.decisions) || []).filter(x => x.type === "analysis");
}

// The time the charts span: what the dashboard has seen, a minute at
// least, five at most, in whole minutes.
function spanOf(tmax, points) {
  if (!points.length) return 60000;
  const seen = tmax - Math.min(...points.map(p => p.t));
  return Math.min(SPAN_MS, Math.max(60000, Math.ceil(seen / 60000) * 60000));
}

function chart(id, title, key, unit, scale, floor, st) {
  const W = 960, H = 150, L = 64, R = 12, T = 20, B = 20;
  const colors = (st.traffic && st.traffic.colors) || {};
  const all = Object.values(colors).flat();
  const tmax = Math.max(Date.now(), ...all.map(p => p.t));
  const span = spanOf(tmax, all);
  const tmin = tmax - span;
  const vals = all.filter(p => p.t >= tmin && p[key] != null).map(p => p[key] * scale);
  const ymax = Math.max(floor, ...vals) * 1.15;
  const x = t => L + (W - L - R) * (t - tmin) / span;
  const y = v => T + (H - T - B) * (1 - v / ymax);
  const g = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title, class: "chart-svg" });
  for (const w of windowsOf(st)) {
    const x0 = Math.max(L, x(w.ended_ms - w.window.duration_ms)), x1 = x(w.ended_ms);
    if (x1 < L) continue;
    g.append(s("rect", { x: x0, y: T, width: Math.max(2, x1 - x0), height: H - T - B, class: "band " + w.verdict }));
    g.append(s("text", { x: x1 - 2, y: T + 11, "text-anchor": "end", class: "band-label " + w.verdict },
      (w.verdict === "passed" ? "✓ " : w.verdict === "failed" ? "✗ " : "? ") + w.color));
  }
  for (let i = 0; i <= 4; i++) {
    const v = ymax * i / 4;
    g.append(s("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    g.append(s("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, v < 10 ? v.toFixed(1) : Math.round(v)));
  }
  const step = span <= 60000 ? 10000 : span <= 180000 ? 30000 : 60000;
  for (let ago = 0; ago <= span; ago += step) {
    const label = ago === 0 ? "now" : ago % 60000 === 0 ? `-${ago / 60000}m` : `-${ago / 1000}s`;
    g.append(s("text", { x: x(tmax - ago), y: H - 4, "text-anchor": "middle", class: "axis" }, label));
  }
  for (const [color, series] of Object.entries(colors)) {
    const pts = series.filter(p => p.t >= tmin && p[key] != null).map(p => `${x(p.t).toFixed(1)},${y(p[key] * scale).toFixed(1)}`);
    if (pts.length) g.append(s("polyline", { points: pts.join(" "), fill: "none", stroke: INK[color] || INK.app, "stroke-width": 2 }));
  }
  const legend = Object.entries(colors).map(([c, series]) => {
    const p = lastPoint(series);
    return `${c} ${p && p[key] != null ? (p[key] * scale).toFixed(key === "rps" ? 1 : 2) : "–"}`;
  }).join(" · ");
  g.append(s("text", { x: L, y: 13, class: "chart-title" }, `${title} (${unit})  ${legend}`));
  $(id).replaceChildren(g);
}

function renderTraffic(st) {
  const t = st.traffic || {};
  $("traffic-source").textContent = (t.source ? "from " + t.source : "") + (t.note ? " · " + t.note : "");
  chart("chart-rps", "request rate", "rps", "req/s", 1, 1, st);
  chart("chart-errors", "5xx share", "errors", "%", 100, 1, st);
  chart("chart-p99", "p99 latency", "p99_ms", "ms", 1, 10, st);
}

function renderHistory(st) {
  const rows = (st.history || []).map(e => h("tr", "result-" + e.result,
    h("td", null, e.started), h("td", null, e.kind), h("td", null, e.release),
    h("td", "result", e.result + (e.recovered ? " (recovered)" : "")),
    h("td", null, e.previous_release || "–"), h("td", null, (e.duration_ms / 1000).toFixed(1) + " s"),
    h("td", "muted", (e.message || "").split("\n")[0])));
  $("history-rows").replaceChildren(...(rows.length ? rows : [h("tr", null, h("td", "muted", "no deploys yet"))]));
}

function render(st) {
  renderHeader(st);
  renderColors(st);
  renderDeploy(st);
  renderTraffic(st);
  renderHistory(st);
  document.body.dataset.looked = st.at || "";
}

async function poll() {
  try {
    const r = await fetch("/api/state", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    render(await r.json());
  } catch (e) {
    $("updated").textContent = "cannot reach the dashboard: " + e.message;
  }
  setTimeout(poll, POLL_MS);
}

async function act(verb) {
  const out = $("action-result");
  const buttons = document.querySelectorAll(".controls button");
  buttons.forEach(b => { b.disabled = true; });
  out.textContent = verb + ": sending…";
  try {
    const r = await fetch("/api/" + verb, {
      method: "POST",
      headers: { "content-type": "application/json", [TOKEN_HEADER]: TOKEN },
      body: JSON.stringify({ reason: $("reason").value }),
    });
    const body = await r.json();
    out.textContent = r.ok
      ? `${verb}: deploy ${body.deploy} took it: ${body.doing}`
      : `${verb} refused: ${body.error}`;
    out.className = r.ok ? "good-text" : "bad-text";
  } catch (e) {
    out.textContent = verb + " failed: " + e.message;
    out.className = "bad-text";
  }
}

for (const b of document.querySelectorAll(".controls button")) {
  b.addEventListener("click", () => act(b.dataset.verb));
}
poll();
