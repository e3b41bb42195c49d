"""What the OAuth pages share: one inline style allowed by its hash, the headers that keep them unframed and uncached,
and the same-site checks of a form's answer."""

from __future__ import annotations

import base64
import hashlib
import html
import secrets

from starlette.requests import Request
from starlette.responses import HTMLResponse

_STYLE = """
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;background:#f4f4f6;color:#1d1d22}
main{max-width:34rem;margin:3rem auto;padding:2rem;background:#fff;border-radius:12px;box-shadow:0 1px 4px #0002}
h1{font-size:1.35rem;line-height:1.3;margin:0 0 1rem}
.who{color:#55555f;font-size:.9rem;word-break:break-all}
ul{padding-left:1.2rem}li{margin:.35rem 0}
label{display:block;font-weight:600;margin-top:1.2rem}
input[type=password]{box-sizing:border-box;width:100%;padding:.6rem;margin-top:.35rem;font:inherit;
border:1px solid #b8b8c2;border-radius:8px}
.hint{color:#55555f;font-size:.85rem;margin:.35rem 0 0}
.error{background:#fdecec;border:1px solid #e8a3a3;color:#7a1c1c;padding:.7rem .9rem;border-radius:8px}
.actions{display:flex;gap:.75rem;margin-top:1.4rem}
button{font:inherit;padding:.6rem 1.3rem;border-radius:8px;border:1px solid #2d5bd7;background:#2d5bd7;color:#fff;
cursor:pointer}
button.secondary{background:#fff;color:#2d5bd7}
"""
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
SECURITY_HEADERS = {
    "Content-Security-Policy": f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def page(title: str, body: str, status: int) -> HTMLResponse:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body><main>{body}</main></body></html>"
    )
    return HTMLResponse(document, status_code=status, headers=SECURITY_HEADERS)


def notice(title: str, message: str, status: int) -> HTMLResponse:
    return page(title, f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>", status)


def same_site(request: Request, origin: str, sent: str, expected: str, cookie: str) -> bool:
    """A form answered from this server's own page: the browser's Origin (when it sends one) is ours, and the form's
    CSRF value is the one expected and the one in the SameSite cookie the page set."""
    if request.headers.get("origin", origin) != origin:
        return False
    return bool(expected) and secrets.compare_digest(sent, expected) and secrets.compare_digest(cookie, expected)
