"""The HTTP edge: the pure-ASGI hot path of `/v1/event`, health, and the OpenAPI document."""
