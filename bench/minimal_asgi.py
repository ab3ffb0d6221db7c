"""The least an ASGI server can do for a Track Event request: read the body, decode it with msgspec,
answer MoEngage's success body. Used to measure HTTP servers against each other (BENCHMARKS.md,
"The HTTP server"); trackd does not use it.

    taskset -c 0 python -m uvicorn bench.minimal_asgi:app --port 18001 --no-access-log \
        --log-level warning --http httptools --loop uvloop
    taskset -c 0 granian --interface asgi --port 18002 --workers 1 --no-ws bench.minimal_asgi:app
"""

from __future__ import annotations

from typing import Any

import msgspec

dec = msgspec.json.Decoder().decode
BODY = (
    b'{"status":"success","message":"Your request has been accepted and will be processed soon.",'
    b'"request_id":"abcdefgh"}'
)


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while True:
                m = await receive()
                if m["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        return
    body = b""
    more = True
    while more:
        m = await receive()
        body += m.get("body", b"")
        more = m.get("more_body", False)
    dec(body)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": BODY})
