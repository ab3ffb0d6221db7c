"""The naive baseline: what a first version of a Track Event server usually looks like.

FastAPI with a pydantic model of the body, HTTP Basic auth, and one SQLite insert plus one commit
per request (WAL, ``synchronous=FULL``: the same durability promise as trackd's queue, a 200
only after the row is on disk), called straight from the handler. Run by bench/run.py as::

    BASELINE_DB=/tmp/x.db BASELINE_WORKSPACE=BENCH BASELINE_KEY=secret \\
        uvicorn bench.baseline_fastapi:app --workers 1 --no-access-log

It is a yardstick, not a product: it checks far less than trackd does.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import uuid
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel, Field

WORKSPACE = os.environ.get("BASELINE_WORKSPACE", "BENCH")
KEY = os.environ.get("BASELINE_KEY", "secret")
DB_PATH = os.environ.get("BASELINE_DB", "baseline.db")


class Action(BaseModel):
    action: str = Field(min_length=1)
    attributes: dict[str, Any] | None = None
    platform: str | None = None
    app_version: str | None = None
    user_time: int | float | str | None = None
    current_time: int | float | str | None = None
    user_timezone_offset: int | None = None


class TrackEvent(BaseModel):
    type: str
    customer_id: str | int
    device_id: str | None = None
    actions: list[Action] = Field(min_length=1)


def _connect() -> sqlite3.Connection:
    conn = sqlite3.connect(DB_PATH, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS requests (id TEXT PRIMARY KEY, workspace TEXT, "
        "customer_id TEXT, events INTEGER, body TEXT)"
    )
    conn.commit()
    return conn


app = FastAPI()
security = HTTPBasic()
db = _connect()


def authenticate(
    workspace_id: str, credentials: Annotated[HTTPBasicCredentials, Depends(security)]
) -> str:
    if workspace_id != WORKSPACE or credentials.username != WORKSPACE:
        raise HTTPException(status_code=401, detail="Invalid APP_ID used in Authentication Header")
    if not secrets.compare_digest(credentials.password.encode(), KEY.encode()):
        raise HTTPException(status_code=401, detail="App Secret key mismatch")
    return workspace_id


@app.post("/v1/event/{workspace_id}")
async def track(
    body: TrackEvent, workspace: Annotated[str, Depends(authenticate)]
) -> dict[str, str]:
    if body.type != "event":
        raise HTTPException(status_code=400, detail="type should be event")
    request_id = uuid.uuid4().hex
    db.execute(
        "INSERT INTO requests VALUES (?, ?, ?, ?, ?)",
        (request_id, workspace, str(body.customer_id), len(body.actions), body.model_dump_json()),
    )
    db.commit()
    return {
        "status": "success",
        "message": "Your request has been accepted and will be processed soon.",
        "request_id": request_id,
    }
