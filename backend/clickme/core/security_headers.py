"""Security headers on every response: a Content-Security-Policy, no MIME sniffing, no referrer.

Only the game page may be framed, and only by MTurk (its HITs show the game in an iframe;
CLICKME_FRAME_ANCESTORS); the console and the API may not be framed at all. Scripts, styles,
images and requests come from this origin only (the frontends have no inline script or style
attribute; images and maps also come as ``blob:`` and ``data:`` URLs). In production, HTTPS is
pinned with HSTS.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

GAME_PAGE = "/"
BASE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'"
)
HSTS = "max-age=31536000; includeSubDomains"


def content_security_policy(path: str, game_frame_ancestors: str) -> str:
    """The policy for a path: the game page may be framed by those origins (MTurk), nothing
    else by anyone."""
    ancestors = f"'self' {game_frame_ancestors}".strip() if path == GAME_PAGE else "'none'"
    return f"{BASE_POLICY}; frame-ancestors {ancestors}"


RawHeaders = list[tuple[bytes, bytes]]


def _raw(headers: dict[str, str]) -> RawHeaders:
    return [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
    ]


class SecurityHeaders:
    """A pure ASGI middleware adding the headers above to every HTTP response (in place of any
    the app set under the same names), made once for the game page and once for the rest."""

    def __init__(self, app: ASGIApp, production: bool, game_frame_ancestors: str) -> None:
        self.app = app
        common = {
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cross-Origin-Resource-Policy": "same-origin",
        }
        if production:
            common["Strict-Transport-Security"] = HSTS
        game = content_security_policy(GAME_PAGE, game_frame_ancestors)
        rest = content_security_policy("/api", game_frame_ancestors)
        game_page = _raw({"Content-Security-Policy": game, **common})
        other = _raw({"Content-Security-Policy": rest, **common, "X-Frame-Options": "DENY"})
        # each kind's headers, and their names (what the app set under them is dropped)
        self.game_page_headers = game_page, {name for name, _ in game_page}
        self.other_headers = other, {name for name, _ in other}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added, names = self.game_page_headers if scope["path"] == GAME_PAGE else self.other_headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [h for h in message.get("headers", ()) if h[0].lower() not in names]
                message = {**message, "headers": [*kept, *added]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
