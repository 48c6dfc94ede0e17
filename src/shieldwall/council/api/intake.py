"""ASGI middleware bounding what any request may make the council read, before any handler
(and so before authentication) runs.

A handler that answers without reading the body — a refusal for a missing token, a 404, a
413 — would leave uvicorn reading and discarding whatever the client keeps sending (an
endless chunked upload costs the council a core). Such an answer is sent with ``Connection:
close``: the rest of the body is never read. And no handler receives more than ``limit``
bytes of body and the part that crossed it, whatever it does with it.
"""

from __future__ import annotations

from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]


class BoundedIntake:
    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        length = headers.get(b"content-length", b"")
        pending = b"chunked" in headers.get(b"transfer-encoding", b"").lower() or (
            length.isdigit() and int(length) > 0
        )
        received = 0

        async def bounded_receive() -> Message:
            nonlocal pending, received
            message: Message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if not message.get("more_body", False):
                    pending = False
                if received > self.limit:  # this part shows the handler it is over; no more
                    message = {**message, "more_body": False}
            return message

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and pending:
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"connection", b"close")],
                }
            await send(message)

        await self.app(scope, bounded_receive, closing_send)
