"""The HTML page: one file, styles and scripts inline, no network at view time.

A Content-Security-Policy meta tag forbids every fetch (``default-src
'none'``), so a report can never load anything from outside itself.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

_CSS = """
:root { --fg: #252525; --muted: #636363; --line: #d9d9d9; --accent: #2166ac; --bg: #fafafa; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       margin: 0; background: var(--bg); line-height: 1.45; }
header, main, footer { max-width: 1100px; margin: 0 auto; padding: 0 1.2rem; }
header { padding-top: 1.2rem; }
h1 { font-size: 1.6rem; margin: 0.3rem 0; }
h2 { font-size: 1.25rem; border-bottom: 1px solid var(--line); padding-bottom: 0.2rem;
     margin-top: 2rem; }
h3 { font-size: 1.02rem; margin: 0 0 0.2rem 0; }
.sub, .note, figcaption p, footer { color: var(--muted); font-size: 0.9rem; }
nav { margin: 0.6rem 0; font-size: 0.92rem; }
nav a { margin-right: 1rem; color: var(--accent); text-decoration: none; }
table.pm-kv { border-collapse: collapse; font-size: 0.92rem; }
table.pm-kv th { text-align: left; padding: 0.2rem 1.2rem 0.2rem 0; vertical-align: top;
                 color: var(--muted); font-weight: 600; white-space: nowrap; }
table.pm-kv td { padding: 0.2rem 0; }
code { font-size: 0.88em; background: #eeeeee; padding: 0 0.2em; border-radius: 3px; }
.pm-controls { display: flex; gap: 1rem; align-items: center; margin: 0.5rem 0; flex-wrap: wrap; }
.pm-search { padding: 0.35rem 0.5rem; min-width: 18rem; border: 1px solid #bdbdbd;
             border-radius: 4px; }
.pm-scroll { overflow-x: auto; background: white; border: 1px solid var(--line); }
table.pm-table { border-collapse: collapse; width: 100%; font-size: 0.85rem; }
table.pm-table th { position: sticky; top: 0; background: #f0f0f0; cursor: pointer;
                    text-align: left; padding: 0.35rem 0.5rem; white-space: nowrap;
                    user-select: none; border-bottom: 1px solid var(--line); }
table.pm-table th[aria-sort="ascending"]::after { content: " \\25B2"; }
table.pm-table th[aria-sort="descending"]::after { content: " \\25BC"; }
table.pm-table td { padding: 0.25rem 0.5rem; border-bottom: 1px solid #eeeeee;
                    white-space: nowrap; }
table.pm-table td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.pm-table tr.sig td:first-child { box-shadow: inset 3px 0 0 var(--accent); }
.pm-pager button { margin: 0 0.2rem; }
figure.pm-figure { background: white; border: 1px solid var(--line); margin: 1rem 0;
                   padding: 0.8rem; }
figure.pm-figure svg { width: 100%; max-width: 900px; height: auto; display: block; }
.pm-skipped { color: #8c2d04; background: #fff5eb; padding: 0.5rem 0.8rem;
              border: 1px solid #fdd0a2; margin: 1rem 0; font-size: 0.9rem; }
.pm-downloads { font-size: 0.8rem; color: var(--muted); }
"""

_JS = r"""
(function () {
  "use strict";
  function fmt(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "boolean") return v ? "yes" : "no";
    if (typeof v === "number") {
      if (Number.isInteger(v)) return String(v);
      var a = Math.abs(v);
      if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
      return String(Number(v.toPrecision(4)));
    }
    return String(v);
  }
  function cmp(a, b) {
    if (typeof a === "number" && typeof b === "number") return a - b;
    if (typeof a === "boolean" && typeof b === "boolean") return (a ? 1 : 0) - (b ? 1 : 0);
    return String(a).localeCompare(String(b), undefined, {numeric: true});
  }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function build(spec, root) {
    var texts = spec.rows.map(function (r) { return r.map(fmt).join("\u0001").toLowerCase(); });
    var order = spec.rows.map(function (_, i) { return i; });
    var state = {col: -1, dir: 1, query: "", page: 0, size: 25};
    var sigCol = spec.columns.indexOf(spec.significant);
    var controls = el("div", "pm-controls");
    var search = el("input", "pm-search");
    search.type = "search";
    search.placeholder = "Search " + spec.rows.length + " rows\u2026";
    search.setAttribute("aria-label", "Search the table");
    var info = el("span", "note");
    var pager = el("span", "pm-pager");
    var prev = el("button", "", "\u2039 previous"), next = el("button", "", "next \u203a");
    pager.appendChild(prev); pager.appendChild(next);
    controls.appendChild(search); controls.appendChild(info); controls.appendChild(pager);
    var scroll = el("div", "pm-scroll");
    var table = el("table", "pm-table");
    var headRow = table.createTHead().insertRow();
    var heads = spec.columns.map(function (name, j) {
      var th = el("th", "", name);
      th.title = "Sort by " + name;
      th.setAttribute("aria-sort", "none");
      th.addEventListener("click", function () {
        if (state.col === j) { state.dir = -state.dir; } else { state.col = j; state.dir = 1; }
        state.page = 0; render();
      });
      headRow.appendChild(th);
      return th;
    });
    var body = table.createTBody();
    scroll.appendChild(table);
    root.appendChild(controls); root.appendChild(scroll);
    search.addEventListener("input", function () {
      state.query = search.value.trim().toLowerCase(); state.page = 0; render();
    });
    prev.addEventListener("click", function () { state.page -= 1; render(); });
    next.addEventListener("click", function () { state.page += 1; render(); });
    function visible() {
      var idx = order;
      if (state.query) {
        idx = idx.filter(function (i) { return texts[i].indexOf(state.query) >= 0; });
      }
      if (state.col >= 0) {
        var j = state.col, d = state.dir;
        idx = idx.slice().sort(function (a, b) {
          var x = spec.rows[a][j], y = spec.rows[b][j];
          if (x === null || y === null) return (x === null) - (y === null);  // empty cells last
          return d * cmp(x, y);
        });
      }
      return idx;
    }
    function render() {
      var idx = visible();
      var pages = Math.max(1, Math.ceil(idx.length / state.size));
      state.page = Math.min(Math.max(state.page, 0), pages - 1);
      var start = state.page * state.size, stop = Math.min(idx.length, start + state.size);
      body.textContent = "";
      for (var k = start; k < stop; k++) {
        var row = spec.rows[idx[k]], tr = body.insertRow();
        if (sigCol >= 0 && row[sigCol] === true) tr.className = "sig";
        for (var j = 0; j < row.length; j++) {
          var td = tr.insertCell();
          td.textContent = fmt(row[j]);
          if (typeof row[j] === "number") td.className = "num";
        }
      }
      heads.forEach(function (th, j) {
        th.setAttribute("aria-sort", j !== state.col ? "none" :
                        (state.dir > 0 ? "ascending" : "descending"));
      });
      info.textContent = (idx.length ? (start + 1) + "\u2013" + stop : "0") + " of " +
        idx.length + " rows" + (idx.length < spec.rows.length ? " (filtered)" : "");
      prev.disabled = state.page === 0; next.disabled = state.page >= pages - 1;
    }
    render();
  }
  document.querySelectorAll("script.pm-table-data").forEach(function (node) {
    var spec = JSON.parse(node.textContent);
    build(spec, document.getElementById(spec.id));
  });
})();
"""


def _cell(value):
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return None if not math.isfinite(value) else float(f"{value:.6g}")
    return str(value)


def table_payload(
    df: pd.DataFrame, table_id: str, *, max_rows: int, sort_by: str | None = "corrected_p_value"
) -> tuple[dict, str | None]:
    """JSON-ready rows of ``df`` (at most ``max_rows``) and a note when rows were left out.

    Examples
    --------
    >>> spec, note = table_payload(pd.DataFrame({"a": [1.0, np.nan], "b": ["x", "y"]}), "t",
    ...                            max_rows=10)
    >>> spec["rows"], note
    ([[1.0, 'x'], [None, 'y']], None)
    """
    note = None
    if len(df) > max_rows:
        if sort_by in df.columns:
            df = df.sort_values(sort_by, kind="stable", na_position="last")
        note = (
            f"The table shows the first {max_rows:,} of {len(df):,} rows"
            + (f" by {sort_by}" if sort_by in df.columns else "")
            + "; the full table is in the result files."
        )
        df = df.head(max_rows)
    columns = [str(c) for c in df.columns]
    data = [df[c].astype(object).tolist() for c in df.columns]
    rows = [[_cell(v) for v in row] for row in zip(*data, strict=True)] if data else []
    return {
        "id": table_id,
        "columns": columns,
        "rows": rows,
        "significant": "below_corrected_p",
    }, note


def _json_script(payload: Mapping) -> str:
    text = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" class="pm-table-data">{text}</script>'


def _kv_table(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="pm-kv">{body}</table>'


def table_section(
    section_id: str, title: str, payload: dict, note: str | None, intro: str = ""
) -> str:
    """A section with a sortable, searchable table (rendered by the inline script)."""
    parts = [f'<section id="{section_id}"><h2>{html.escape(title)}</h2>']
    if intro:
        parts.append(f'<p class="note">{intro}</p>')
    if note:
        parts.append(f'<p class="note">{html.escape(note)}</p>')
    parts.append(f'<div class="pm-table-root" id="{payload["id"]}"></div>')
    parts.append(_json_script(payload))
    parts.append("</section>")
    return "".join(parts)


def figure_block(
    key: str,
    title: str,
    caption: str,
    svg: str | None,
    skipped: str | None,
    files: Sequence[str] = (),
) -> str:
    """One figure (inline SVG) with its caption, or the reason it is missing."""
    head = f"<h3>{html.escape(title)}</h3>"
    if svg is None:
        return (
            f'<div class="pm-skipped" id="fig-{key}">{head}'
            f"<p>Not drawn: {html.escape(skipped or 'no data')}</p></div>"
        )
    links = ""
    if files:
        links = (
            '<p class="pm-downloads">Static copies: '
            + ", ".join(f"<code>{html.escape(f)}</code>" for f in files)
            + "</p>"
        )
    return (
        f'<figure class="pm-figure" id="fig-{key}"><figcaption>{head}'
        f"<p>{html.escape(caption)}</p></figcaption>{svg}{links}</figure>"
    )


def page(
    title: str,
    subtitle: str,
    summary_rows: Sequence[tuple[str, str]],
    sections: Sequence[tuple[str, str, str]],
) -> str:
    """The whole HTML document.

    ``sections`` are ``(id, nav label, html)``; the summary comes first.
    """
    nav = "".join(
        f'<a href="#{sid}">{html.escape(label)}</a>'
        for sid, label, _ in [("summary", "Summary", ""), *sections]
    )
    body = "".join(text for _, _, text in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f'<header><h1>{html.escape(title)}</h1><p class="sub">{html.escape(subtitle)}</p>'
        f"<nav>{nav}</nav></header><main>"
        f'<section id="summary"><h2>Summary</h2>{_kv_table(summary_rows)}</section>'
        f"{body}</main><footer><p>Made with pairmap. This file is self-contained: it loads "
        f"nothing from the network.</p></footer><script>{_JS}</script></body></html>\n"
    )
