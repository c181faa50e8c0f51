"""Small HTML builders for the explorer: every piece of data passes through `esc` exactly once."""
from __future__ import annotations

import hashlib
import json
import re
from html import escape
from typing import Any, Iterable

# No scripts, nothing fetched: a page that shows untrusted text cannot be made to run or load anything.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2430;background:#f5f6f8}
header{background:#1f2a3c;color:#fff;padding:10px 24px;display:flex;gap:20px;align-items:baseline}
header a{color:#cfe0ff;text-decoration:none}header .brand{font-weight:700;color:#fff;font-size:17px}
main{max-width:1100px;margin:0 auto;padding:12px 24px 48px}
h1{font-size:24px;margin:18px 0 6px}h2{font-size:19px;margin:28px 0 8px;border-bottom:1px solid #d8dce3;padding-bottom:4px}
h3{font-size:16px;margin:18px 0 6px}
a{color:#1d5fbf}
table{border-collapse:collapse;background:#fff;margin:6px 0 12px;font-size:14px}
th,td{border:1px solid #dde1e7;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
code,pre{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:#fff;border:1px solid #dde1e7;padding:8px;overflow-x:auto;white-space:pre-wrap;word-break:break-word;margin:4px 0}
.muted{color:#667085}.small{font-size:13px}
.tag{display:inline-block;border-radius:9px;padding:0 8px;font-size:12px;font-weight:600;margin-right:4px}
.read{background:#e3f0ff;color:#1d4f91}.write{background:#fde8d7;color:#8a3b00}
.pass{background:#dcf5e3;color:#146c2e}.fail{background:#fde2e1;color:#9b1c1c}.info{background:#eceff3;color:#394150}
.card{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:10px 14px;margin:10px 0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:12px}
.chat{display:flex;flex-direction:column;gap:8px;margin-top:8px}
.msg{max-width:78%;border-radius:10px;padding:8px 12px;border:1px solid #dde1e7;background:#fff}
.msg .who{font-size:12px;font-weight:700;color:#667085;margin-bottom:2px}
.msg .text{white-space:pre-wrap;word-break:break-word}
.user{align-self:flex-start;background:#ffffff}.assistant{align-self:flex-end;background:#e8f1ff;border-color:#c5d9f7}
.tool{align-self:flex-end;background:#f3f4f6;max-width:70%}.system{align-self:stretch;max-width:100%;background:#fafafa}
.tool.err{background:#fdecec;border-color:#f3b9b9}
details>summary{cursor:pointer;font-weight:600}details{margin:4px 0}
svg text{font:12px system-ui,sans-serif;fill:#1d2430}
.kv th{white-space:nowrap;width:1%;font-weight:600}
.matrix th{white-space:nowrap;font-weight:500}.matrix td{text-align:center;padding:2px 4px;min-width:18px}
.matrix .tag{margin:0;padding:0 5px}
"""


def esc(value: Any) -> str:
    """Text of any value, HTML-escaped (quotes too, so it is safe inside attributes)."""
    return escape(value if isinstance(value, str) else str(value), quote=True)


def slug(name: str) -> str:
    """A file-name-safe form of an untrusted name; names that needed changing get a hash so they stay distinct."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", name)[:80]
    if safe == name and safe:
        return safe
    return f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def link(href: str, text: Any, cls: str = "") -> str:
    attr = f' class="{esc(cls)}"' if cls else ""
    return f'<a href="{esc(href)}"{attr}>{esc(text)}</a>'


def tag(text: Any, cls: str) -> str:
    return f'<span class="tag {esc(cls)}">{esc(text)}</span>'


def verdict(passed: bool) -> str:
    return tag("pass", "pass") if passed else tag("fail", "fail")


def table(headers: list[str], rows: Iterable[list[str]], numeric: Iterable[int] = ()) -> str:
    """Headers are escaped here; cells arrive already built (escaped or markup)."""
    nums = set(numeric)
    head = "".join(f'<th{" class=num" if i in nums else ""}>{esc(h)}</th>' for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td{" class=num" if i in nums else ""}>{c}</td>' for i, c in enumerate(r))
                   + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def kv(rows: Iterable[tuple[str, str]]) -> str:
    """A two-column key/value table: keys are escaped here, values arrive built."""
    body = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="kv"><tbody>{body}</tbody></table>'


def pretty(value: Any) -> str:
    """A JSON value (or a string holding JSON) as an escaped, indented block."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return f"<pre>{esc(value)}</pre>"
    return f"<pre>{esc(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))}</pre>"


def details(summary: str, body: str, open_: bool = False) -> str:
    """A collapsible block: no script needed, so nothing can fail in the console."""
    return f'<details{" open" if open_ else ""}><summary>{summary}</summary>{body}</details>'


_INLINE = [(re.compile(r"\*\*(.+?)\*\*"), r"<strong>\1</strong>"), (re.compile(r"`([^`]+)`"), r"<code>\1</code>")]


def _inline(text: str) -> str:
    out = esc(text)  # escaped first: the patterns only wrap already-escaped text
    for pattern, repl in _INLINE:
        out = pattern.sub(repl, out)
    return out


def markdown(text: str) -> str:
    """The subset of Markdown policies use (headings, bullets, paragraphs, bold, code); comments dropped."""
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    out: list[str] = []
    in_list = False
    para: list[str] = []

    def flush() -> None:
        nonlocal in_list
        if para:
            out.append(f"<p>{_inline(' '.join(para))}</p>")
            para.clear()
        if in_list:
            out.append("</ul>")
            in_list = False

    for line in text.splitlines():
        stripped = line.strip()
        heading = re.match(r"(#{1,6})\s+(.*)", stripped)
        if heading:
            flush()
            level = min(len(heading.group(1)) + 2, 6)  # page headings own h1/h2
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif stripped.startswith(("- ", "* ")):
            if para:
                out.append(f"<p>{_inline(' '.join(para))}</p>")
                para.clear()
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{_inline(stripped[2:])}</li>")
        elif not stripped:
            flush()
        else:
            if in_list:
                out.append("</ul>")
                in_list = False
            para.append(stripped)
    flush()
    return "\n".join(out)


def page(title: str, body: str, root: str) -> str:
    """A whole self-contained document; `root` is the relative path back to the site's top ("" or "../")."""
    nav = (f'<a class="brand" href="{root}index.html">Skiller explorer</a>'
           f'<a href="{root}index.html">Environments</a><a href="{root}evaluations.html">Evaluations</a>')
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="icon" href="data:,"><title>{esc(title)} · Skiller</title><style>{_CSS}</style></head>\n'
            f'<body><header>{nav}</header>\n<main>\n{body}\n</main></body></html>\n')
