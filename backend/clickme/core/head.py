"""HEAD wherever GET is allowed: a pure ASGI middleware that answers a HEAD request as the same
GET would, headers only (FastAPI's routes accept only the methods they declare)."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        body_sent = False

        async def headers_only(message: Message) -> None:
            nonlocal body_sent
            if message["type"] == "http.response.start":
                await send(message)
            elif message["type"] == "http.response.body" and not body_sent:
                if not message.get("more_body", False):
                    body_sent = True
                    await send({"type": "http.response.body", "body": b""})
            else:
                await send(message)

        # A copy: the server keeps its own scope, knows the request is a HEAD and sends no body.
        await self.app({**scope, "method": "GET"}, receive, headers_only)
