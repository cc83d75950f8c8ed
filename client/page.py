"""The shell of every page we write (an audit's, a comparison's, a layer profile's): self-contained, no
script and no request of any kind (a Content-Security-Policy meta tag allows only inline styles and data:
images), figures as inline SVG with captions, and tables of (what, text)."""
from __future__ import annotations

import html

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STYLE = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.2em .7em;border-bottom:1px solid #eee;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}.fail{color:#b00020;font-weight:600}.pass{color:#1b5e20}
.warn{background:#fff4e5;border-left:4px solid #f0a000;padding:.5em 1em}code,pre{font-size:.92em}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;white-space:pre-wrap}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:1em}
.pair{border:1px solid #ddd;padding:.5em;font-size:.85em}.pair img{width:48%;image-rendering:pixelated}
figure{margin:1em 0}figcaption{font-size:.85em;color:#555}.layers td{white-space:nowrap}"""


def document(title: str, body: list[str]) -> str:
    """The page around ``body``: its policy forbids every request; styles are inline."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")


def figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{html.escape(caption)}</figcaption></figure>"


def facts(rows: list[tuple[str, str]]) -> str:
    """(what, plain text) rows as a table, escaped."""
    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows) \
        + "</table>"


NUMERIC = ' class="n"'


def grid(head: list[str], rows: list[list[str]], numeric: set[int], css: str = "") -> str:
    """A table of plain cells under their head; the columns in ``numeric`` right-aligned."""
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f'<td{NUMERIC if i in numeric else ""}>{html.escape(c)}</td>'
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    cls = f' class="{css}"' if css else ""
    return f"<table{cls}><tr>{th}</tr>{body}</table>"
