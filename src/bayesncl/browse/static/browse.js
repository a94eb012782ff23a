// bayesncl feature browser: renders window.DATA (data.js) into #app. Routes (URL hash):
//   #sort=KEY&order=asc|desc   the index of dimensions (KEY: dim, frequency, consistency,
//                               entropy, gate); #dim=K one dimension; #img=I one image.
// Plain DOM, no libraries, no network: works from file://. Text from the data (class names,
// file paths) is only ever set as textContent.
"use strict";
(function () {
  const D = window.DATA;
  const app = document.getElementById("app");
  if (!D) {
    app.textContent = "data.js did not load: keep it next to index.html.";
    return;
  }
  const KEYS = { dim: "k", frequency: "freq", consistency: "cons", entropy: "ent", gate: "gate" };
  const DEFAULT_ORDER = { k: "asc", freq: "desc", cons: "desc", ent: "asc", gate: "desc" };
  let indexHash = "#sort=frequency&order=desc";

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "style") Object.assign(e.style, v);
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return e;
  }
  const pct = (x) => (x === null || x === undefined ? "–" : (100 * x).toFixed(1) + "%");
  const num = (x, d) => (x === null || x === undefined ? "–" : Number(x).toFixed(d));
  const className = (c) => (c === null || c === undefined || c < 0 ? "–" : D.classes[c] ?? String(c));
  const labelOf = (i) => (D.labelled ? className(D.labels[i]) : "");

  function thumb(i, px) {
    const S = D.sprites;
    const sheet = Math.floor(i / S.per_sheet), j = i % S.per_sheet;
    const r = Math.floor(j / S.cols), c = j % S.cols;
    const rows = Math.ceil(Math.min(S.per_sheet, D.n - sheet * S.per_sheet) / S.cols);
    return el("span", {
      class: "thumb", title: `image ${i}` + (D.labelled ? ` (${labelOf(i)})` : ""),
      style: {
        width: px + "px", height: px + "px",
        backgroundImage: `url("${S.files[sheet]}")`,
        backgroundSize: `${S.cols * px}px ${rows * px}px`,
        backgroundPosition: `-${c * px}px -${r * px}px`,
      },
    });
  }
  function imageCell(i, value, px) {
    const caption = D.labelled ? labelOf(i) : "#" + i;
    return el("a", { class: "cell", href: "#img=" + i }, thumb(i, px),
      el("span", { class: "lab", text: caption }),
      value === undefined ? null : el("span", { class: "muted", text: num(value, 3) }));
  }
  function bars(rows, cls) {
    const max = Math.max(1e-12, ...rows.map((r) => r[1]));
    return el("div", { class: "bars" }, rows.map(([name, v, text]) => [
      el("span", { class: "name", text: name }),
      el("div", {}, el("div", { class: "b " + (cls || ""), style: { width: (100 * v / max) + "%" } })),
      el("span", { class: "muted", text: text }),
    ]));
  }
  function params() {
    const out = {};
    for (const part of location.hash.replace(/^#/, "").split("&")) {
      if (!part) continue;
      const [k, v] = part.split("=");
      out[decodeURIComponent(k)] = decodeURIComponent(v || "");
    }
    return out;
  }
  function sortedDims(key, order) {
    const sign = order === "asc" ? 1 : -1;
    return D.dims.slice().sort((a, b) => {
      const x = a[key], y = b[key];
      const xn = x === null || x === undefined, yn = y === null || y === undefined;
      if (xn !== yn) return xn ? 1 : -1; // missing values last
      if (!xn && x !== y) return sign * (x < y ? -1 : 1);
      return a.k - b.k;
    });
  }

  function renderIndex(p) {
    const name = p.sort && KEYS[p.sort] ? p.sort : (Object.keys(KEYS).find((n) => KEYS[n] === p.sort) || "frequency");
    const key = KEYS[name];
    const order = p.order === "asc" || p.order === "desc" ? p.order : DEFAULT_ORDER[key];
    indexHash = `#sort=${name}&order=${order}`;
    const cols = [["dim", "dim"], ["frequency", "frequency"]];
    if (D.labelled) cols.push(["consistency", "consistency"], ["entropy", "entropy (nats)"]);
    if (D.has_gate) cols.push(["gate", "gate open"]);
    const head = el("tr", {}, cols.map(([n, label]) => {
      const next = n === name ? (order === "asc" ? "desc" : "asc") : DEFAULT_ORDER[KEYS[n]];
      const arrow = n === name ? (order === "asc" ? " ▲" : " ▼") : "";
      const th = el("th", { class: n === name ? "sorted" : null, "data-sort": n, text: label + arrow });
      th.addEventListener("click", () => { location.hash = `sort=${n}&order=${next}`; });
      return th;
    }), D.labelled ? el("th", { class: "left", text: "top class" }) : null,
    el("th", { class: "left", text: "most activated images" }));
    const body = el("tbody", {}, sortedDims(key, order).map((d) => {
      const tr = el("tr", { class: "dim-row" + (d.n_active ? "" : " dead"), "data-dim": d.k },
        el("td", {}, el("a", { href: "#dim=" + d.k, text: String(d.k) })),
        el("td", { text: pct(d.freq) }),
        D.labelled ? el("td", { text: pct(d.cons) }) : null,
        D.labelled ? el("td", { text: num(d.ent, 3) }) : null,
        D.has_gate ? el("td", { text: pct(d.gate) }) : null,
        D.labelled ? el("td", { class: "left", text: className(d.top_class) }) : null,
        el("td", { class: "left" }, d.top.slice(0, 8).map((i) => thumb(i, 24))));
      return tr;
    }));
    const dead = D.dims.filter((d) => !d.n_active).length;
    app.replaceChildren(
      el("h1", { text: `${D.K} dimensions` }),
      el("p", { class: "muted", text: `${dead} never active on these images. Click a column to sort; a dimension for its images.` }),
      el("table", { class: "dims", id: "dims" }, el("thead", {}, head), body));
  }

  function renderDim(k) {
    const d = D.dims[k];
    if (!d) { app.textContent = `no dimension ${k}`; return; }
    const stats = [["activating images", `${d.n_active} of ${D.n} (${pct(d.freq)})`],
      ["mean activation when active", num(d.mean_active, 4)]];
    if (D.labelled) stats.push(["class consistency", pct(d.cons)], ["top class", className(d.top_class)],
      ["semantic entropy", num(d.ent, 3) + " nats"]);
    if (D.has_gate) stats.push(["gate open rate", pct(d.gate)], ["mean gate probability α", num(d.alpha, 3)]);
    const left = el("div", {}, el("h2", { text: "Statistics" }),
      el("dl", { class: "stats" }, stats.map(([a, b]) => [el("dt", { text: a }), el("dd", { text: b })])));
    const right = el("div", {});
    if (D.labelled && d.hist) {
      const total = d.hist.reduce((a, b) => a + b, 0) || 1;
      right.append(el("h2", { text: "Classes of the activating images" }),
        bars(d.hist.map((c, i) => [className(i), c, `${c} (${pct(c / total)})`])));
    }
    const gate = el("div", {});
    if (D.has_gate) {
      gate.append(el("h2", { text: "Gate probability α over all images" }),
        bars(d.alpha_hist.map((c, i) => [`${(i / 10).toFixed(1)}–${((i + 1) / 10).toFixed(1)}`, c, String(c)]), "gate"));
      if (d.gate_by_class) gate.append(el("h2", { text: "Gate open rate by class" }),
        bars(d.gate_by_class.map((g, i) => [className(i), g, pct(g)]), "gate"));
    }
    const prev = k > 0 ? el("a", { href: "#dim=" + (k - 1), text: "← dim " + (k - 1) }) : null;
    const next = k + 1 < D.K ? el("a", { href: "#dim=" + (k + 1), text: "dim " + (k + 1) + " →" }) : null;
    app.replaceChildren(
      el("h1", { id: "dim-title", text: `Dimension ${k}` }),
      el("div", { class: "pager" }, el("a", { href: indexHash, text: "all dimensions" }), prev, next),
      el("div", { class: "columns" }, left, right, gate),
      el("h2", { text: `Most activated images (${d.top.length})` }),
      el("div", { class: "grid", id: "top-images" }, d.top.map((i, j) => imageCell(i, d.top_v[j], 48))),
      el("h2", { text: `Least activated of the activating images (${d.bottom.length})` }),
      el("div", { class: "grid", id: "bottom-images" }, d.bottom.map((i, j) => imageCell(i, d.bottom_v[j], 48))));
  }

  function renderImage(i) {
    const row = D.images[i];
    if (!row) { app.textContent = `no image ${i}`; return; }
    const nActive = row[row.length - 1], act = row.slice(0, -1);
    const info = [["image", `#${i}`], [D.id_kind === "paths" ? "file" : "index in split", String(D.ids[i])],
      ["active dimensions", `${nActive} of ${D.K}` + (nActive > act.length ? ` (the ${act.length} strongest shown)` : "")]];
    if (D.labelled) info.splice(1, 0, ["label", labelOf(i)]);
    const list = el("div", { class: "bars", id: "active-dims" }, act.map(([k, v]) => {
      const d = D.dims[k];
      return [el("a", { class: "name", href: "#dim=" + k, text: `dim ${k}` + (D.labelled ? ` · ${className(d.top_class)} ${pct(d.cons)}` : "") }),
        el("div", {}, el("div", { class: "b", style: { width: (100 * v / Math.max(1e-12, act[0][1])) + "%" } })),
        el("span", {}, num(v, 3), " ", d.top.slice(0, 4).map((t) => thumb(t, 20)))];
    }));
    app.replaceChildren(
      el("h1", { text: `Image ${i}` }),
      el("div", { class: "pager" }, el("a", { href: indexHash, text: "all dimensions" })),
      el("div", { class: "columns" }, el("div", {}, thumb(i, 128)),
        el("dl", { class: "stats" }, info.map(([a, b]) => [el("dt", { text: a }), el("dd", { text: b })]))),
      el("h2", { text: "Active dimensions (value of v; the dimension's top class and consistency; its top images)" }),
      list);
  }

  function route() {
    const p = params();
    if (p.dim !== undefined) renderDim(parseInt(p.dim, 10));
    else if (p.img !== undefined) renderImage(parseInt(p.img, 10));
    else renderIndex(p);
    window.scrollTo(0, 0);
  }
  document.getElementById("subtitle").textContent = `${D.title} · ${D.model} · ${D.source}`;
  document.title = `${D.title}: feature browser`;
  window.addEventListener("hashchange", route);
  route();
})();
