"""Security headers on every response: a Content-Security-Policy, no MIME sniffing, no referrer.

Only the game page may be framed, and only by MTurk (its HITs show the game in an iframe;
CLICKME_FRAME_ANCESTORS); the console and the API may not be framed at all. Scripts, styles,
images and requests come from this origin only (the frontends have no inline script or style
attribute; images and maps also come as ``blob:`` and ``data:`` URLs). In production, HTTPS is
pinned with HSTS.
"""

from starlette.datastructures import MutableHeaders
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


class SecurityHeaders:
    """A pure ASGI middleware adding the headers above to every HTTP response."""

    def __init__(self, app: ASGIApp, production: bool, game_frame_ancestors: str) -> None:
        self.app = app
        self.production = production
        self.game_frame_ancestors = game_frame_ancestors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = content_security_policy(scope["path"], self.game_frame_ancestors)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = policy
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                headers["Cross-Origin-Resource-Policy"] = "same-origin"
                if scope["path"] != GAME_PAGE:
                    headers["X-Frame-Options"] = "DENY"
                if self.production:
                    headers["Strict-Transport-Security"] = HSTS
            await send(message)

        await self.app(scope, receive, send_with_headers)
