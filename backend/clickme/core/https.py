"""Production is reached over HTTPS: the client's address and scheme from trusted proxies only,
and a plain-HTTP request by a host name gets a redirect or an explanation, never a broken game.

Browsers drop the `Secure` player cookie over plain HTTP, so a game opened at `http://its-name/`
would consent and then answer every request 401. Behind a trusted proxy that says the original
request was plain HTTP, the same URL on HTTPS is where the game lives: a redirect. Anyone else
(no proxy, or a proxy this server does not trust) reaches a server that has no HTTPS on that
address, and a redirect could only fail or loop: an explanation instead. Local addresses
(localhost, loopback) are exempt, as browsers treat them as secure; so are the operations routes
asked on the inside.
"""

import ipaddress
from html import escape

from starlette.datastructures import URL, Headers
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from clickme.core.errors import error_body

OPERATIONS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
PLAIN_SCHEMES = frozenset({"http", "ws"})
# A WebSocket handshake refused before it is accepted (uvicorn answers it 403).
POLICY_VIOLATION = 1008
HTTPS_REQUIRED = "this server must be reached over HTTPS"
UNTRUSTED_PROXY_HINT = (
    "A proxy in front of this server says the request came over HTTPS, but the server does "
    "not trust it: set CLICKME_FORWARDED_ALLOW_IPS to the proxy's address."
)


def host_name(host_header: str) -> str:
    """The host of a Host header, without its port (IPv6 without brackets)."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def is_local_host(host: str) -> bool:
    """localhost, a name under .localhost, or a loopback address: secure to browsers."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def https_required_response(scope: Scope, headers: Headers) -> Response:
    """The answer to a plain-HTTP request by a host name: a redirect when a (trusted) proxy said
    the original request was plain HTTP, otherwise the explanation (JSON for the API)."""
    if headers.get("x-forwarded-proto", "").strip() == "http":
        url = URL(scope=scope).replace(scheme="https", port=None)
        return RedirectResponse(str(url), status_code=308)
    untrusted_proxy = headers.get("x-forwarded-proto", "").strip() == "https"
    hint = UNTRUSTED_PROXY_HINT if untrusted_proxy else ""
    if scope["path"].startswith("/api/"):
        message = f"{HTTPS_REQUIRED}: open the game at its https:// address. {hint}".strip()
        return JSONResponse(error_body("https_required", message), status_code=403)
    return HTMLResponse(https_page(host_name(headers.get("host", "")), hint), status_code=403)


def https_page(host: str, hint: str) -> str:
    """A plain page saying what is wrong and what to do (no script, no style: the CSP holds)."""
    address = f"https://{escape(host)}/"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>ClickMe: HTTPS required</title></head><body>"
        "<h1>This server must be reached over HTTPS</h1>"
        "<p>The game keeps you as the same anonymous player with a secure cookie, which your "
        "browser keeps only on an HTTPS connection. Over plain HTTP the game could not start.</p>"
        f'<p>Open <a href="{address}">{address}</a> instead. If that does not load, tell the '
        "people who run this study: the server needs a certificate (see the ClickMe README, "
        "Deployment).</p>"
        f"{f'<p>{escape(hint)}</p>' if hint else ''}"
        "</body></html>"
    )


class HttpsOnly:
    """Pure ASGI: production's plain-HTTP requests (and WebSocket handshakes) by a host name do
    not reach the app."""

    def __init__(self, app: ASGIApp, production: bool) -> None:
        self.app = app
        self.production = production

    def must_refuse(self, scope: Scope, headers: Headers) -> bool:
        return (
            self.production
            and scope["scheme"] in PLAIN_SCHEMES
            and scope["path"] not in OPERATIONS_PATHS
            and not is_local_host(host_name(headers.get("host", "")))
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = Headers(scope=scope)
            if self.must_refuse(scope, headers):
                if scope["type"] == "websocket":  # its handshake answered 403
                    await send({"type": "websocket.close", "code": POLICY_VIOLATION})
                else:
                    await https_required_response(scope, headers)(scope, receive, send)
                return
        await self.app(scope, receive, send)
