"""Every `/v1` endpoint of the table (`trackd.edge.v1`): track-event.md's check table, in order.

Rows 1-15 (size, auth, headers, body) are here; rows 16-25 are the route's validator in
`trackd.wire`; row 26 is the limiter (the route's bucket), row 27 the queue, row 28 anything
unexpected. Every response carries
`X-Request-Id`, and the rate-limit headers whenever the path names a known workspace. A 200 is
sent only after the queue says the envelope is durable; a rejection keeps nothing.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import time
import urllib.parse
import zlib
from collections.abc import Callable
from urllib.parse import parse_qs

import msgspec

from trackd.edge.http import (
    ClientDisconnected,
    Headers,
    Receive,
    Scope,
    Send,
    client_ip,
    encode,
    first_headers,
    read_body,
    send_json,
)
from trackd.edge.metrics import EdgeCounters
from trackd.edge.registry import WorkspaceRegistry
from trackd.edge.request_log import RequestRecorder
from trackd.edge.v1 import V1Route, WorkspaceFrom
from trackd.errors import BackendError, ContractError, QueueUnavailable
from trackd.limiter.base import Decision, Limiter
from trackd.models import (
    REQUEST_BODY_BYTES,
    Envelope,
    Kind,
    RequestEntry,
    RequestError,
    Workspace,
)
from trackd.queue.base import UNKNOWN, Queue
from trackd.store.base import EventStore
from trackd.wire import contract
from trackd.wire.auth import check_key, key_matches, parse_basic
from trackd.wire.event import Validated

log = logging.getLogger(__name__)

IDENTITY_ENCODINGS = {b"", b"identity"}
GZIP_ENCODINGS = {b"gzip", b"x-gzip"}
RETRY_AFTER_UNAVAILABLE = b"1"
AUTH_MEMO = 1024  # Authorization headers (and key checks) remembered per endpoint
_decode_json = msgspec.json.Decoder().decode


def idempotent_request_id(workspace_id: str, key: bytes) -> str:
    """The same key in the same workspace always names the same request (and events)."""
    digest = hashlib.sha256(workspace_id.encode() + b"\0" + key).digest()
    return base64.urlsafe_b64encode(digest[:12]).decode()


class Request:
    """What the checks learn about one request as they go."""

    # (authenticated, payload, received_ms, stored_events, validated: the request log, issue 13)
    __slots__ = (
        "authenticated",
        "body",
        "client",
        "header_list",
        "headers",
        "inflate_failed",
        "method",
        "payload",
        "query",
        "query_string",
        "raw_path",
        "received_ms",
        "request_id",
        "stored_events",
        "validated",
        "workspace_id",
    )

    def __init__(
        self,
        method: str,
        raw_path: bytes,
        query_string: bytes,
        header_list: list[tuple[bytes, bytes]],
        body: bytes,
        client: str | None,
        workspace_id: str | None,
        by_name: dict[bytes, bytes] | None = None,
    ) -> None:
        self.method = method
        self.raw_path = raw_path
        self.query_string = query_string
        self.header_list = header_list
        self.headers = first_headers(header_list) if by_name is None else by_name
        self.query = parse_qs(query_string.decode("latin-1")) if query_string else {}
        self.client = client
        # A query route's workspace is its `app_id` ("" when absent: no workspace is named so).
        self.workspace_id = (self.param("app_id") or "") if workspace_id is None else workspace_id
        self.request_id = contract.new_request_id()
        self.body = body
        self.inflate_failed = False
        self.received_ms = int(time.time() * 1000)
        self.authenticated = False
        self.validated: Validated | None = None
        self.payload: object = None
        self.stored_events = 0

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


#: What the core answers: (status, headers, body); a transport adds only its framing (the
#: content type and length, the status line).
Answer = tuple[int, Headers, bytes]


class TrackEndpoint:
    """One `/v1` row. The check table runs in the transport-free core, `respond` (and `refuse`
    for an answer before the body is read); the ASGI entry point (`__call__`) and the fast path
    (`trackd.edge.protocol.FastCycle`) are only transports around it. Whatever a request must do
    or record happens in the core (`finish`: counts and the request log)."""

    def __init__(
        self,
        registry: WorkspaceRegistry,
        limiter: Limiter,
        queue: Queue,
        max_body: int,
        counters: EdgeCounters,
        route: V1Route,
        recorder: RequestRecorder | None = None,
        events: EventStore | None = None,  # the rows' `precheck` and `respond` (Delete User)
    ) -> None:
        self.events = events
        self.registry = registry
        self.limiter = limiter
        self.queue = queue
        self.max_body = max_body
        self.counters = counters
        self.route = route
        self.recorder = recorder
        self._path_workspace = route.workspace_from is WorkspaceFrom.PATH
        self._header_workspace = route.workspace_from is WorkspaceFrom.HEADER
        # Rows 2-5 and 9-10 are pure functions of the header and of (key, stored hash): a
        # client sends the same Authorization on every request, so their answers are kept
        # (a bounded LRU; errors are raised again each time, never kept). The stored hash is
        # read from the registry on every request, so a regenerated key or a suspension is
        # honoured exactly as without the memo (issue 14: base64, SHA-256 and the
        # constant-time compare were ~5% of a single-event request).
        self._parse_basic = functools.lru_cache(maxsize=AUTH_MEMO)(parse_basic)
        self._key_matches = functools.lru_cache(maxsize=AUTH_MEMO)(key_matches)

    # -- transports -----------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI transport: the body read to the cap, then the core."""
        method, raw_path = scope["method"], scope.get("raw_path") or scope["path"].encode()
        query, header_list = scope.get("query_string", b""), scope["headers"]
        client = scope.get("client")
        peer = str(client[0]) if client else None
        if self.declared_too_large(first_headers(header_list)):
            too_large = contract.payload_too_large()
            answer = await self.refuse(method, raw_path, query, header_list, peer, too_large)
        else:
            try:
                body = await read_body(receive, self.max_body)
            except ClientDisconnected:
                return  # nothing to answer, nothing kept
            if body is None:
                too_large = contract.payload_too_large()
                answer = await self.refuse(method, raw_path, query, header_list, peer, too_large)
            else:
                answer = await self.respond(method, raw_path, query, header_list, body, peer)
        status, answer_headers, answer_body = answer
        await send_json(send, status, answer_body, answer_headers)

    def declared_too_large(self, headers: dict[bytes, bytes]) -> bool:
        """Row 1 on the declared length, before any of the body is read."""
        declared = headers.get(b"content-length")
        return declared is not None and declared.isdigit() and int(declared) > self.max_body

    # -- the core ---------------------------------------------------------------------------

    async def respond(
        self,
        method: str,
        path: bytes,
        query: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        client: str | None,
        by_name: dict[bytes, bytes] | None = None,
    ) -> Answer:
        """The check table over one whole request: `path` as sent (percent-encoded, without
        the query), `headers` as received (names in lower case), its body as received (at most
        `max_body` bytes, maybe gzip), `client` the peer's address; `by_name`, if the
        transport made it already, `first_headers(headers)`. Never raises."""
        workspace_id = self._workspace_of(path)
        request = Request(method, path, query, headers, body, client, workspace_id, by_name)
        try:
            status, answer_body, answer_headers = await self._handle(request)
        except ContractError as exc:
            status, answer_body = exc.status, self._fail(exc, request)
            answer_headers = await self._error_headers(exc, request)
            self.finish(request, status, exc)
        except Exception:
            log.exception("unexpected failure on request %s", request.request_id)
            unexpected = self.route.unexpected()  # Delete User's own 500 wording
            status, answer_body, answer_headers = 500, self._fail(unexpected, request), []
            self.finish(request, status, unexpected)
        else:
            self.finish(request, status, None)
        return self._answer(request, status, answer_body, answer_headers)

    async def refuse(
        self,
        method: str,
        path: bytes,
        query: bytes,
        headers: list[tuple[bytes, bytes]],
        client: str | None,
        exc: ContractError,
    ) -> Answer:
        """Answer `exc` before the body is read (row 1 on a declared or read length, admission
        control's 503), with the headers, counts and log entry of any rejection."""
        request = Request(method, path, query, headers, b"", client, self._workspace_of(path))
        answer_headers = await self._error_headers(exc, request)
        self.finish(request, exc.status, exc)
        return self._answer(request, exc.status, self._fail(exc, request), answer_headers)

    def _workspace_of(self, path: bytes) -> str | None:
        """A path route's workspace id: its last segment, percent-decoded as the router saw it."""
        if not self._path_workspace:
            return None
        last = path.rpartition(b"/")[2].decode("latin-1")
        return urllib.parse.unquote(last) if "%" in last else last

    @staticmethod
    def _answer(request: Request, status: int, body: bytes, headers: Headers) -> Answer:
        headers.append((b"x-request-id", request.request_id.encode()))
        return status, headers, body

    def finish(self, request: Request, status: int, error: ContractError | None) -> None:
        """Count the answer, and record it in the request log (every answer of every row goes
        through here, whatever carries it to the client)."""
        self.counters.responses[status] += 1
        if self.registry.get(request.workspace_id) is None:
            return
        if status != 200:
            self.counters.rejected[request.workspace_id] += 1
        if self.recorder is not None:
            self.recorder.record(self._entry(request, status, error), request.stored_events)

    # -- Request log (issue 13 item 1) --

    def _entry(self, request: Request, status: int, error: ContractError | None) -> RequestEntry:
        validated = request.validated
        user_agent = request.headers.get(b"user-agent")
        entry = RequestEntry(
            workspace_id=request.workspace_id,
            at=request.received_ms,
            endpoint=self.route.name,
            method=request.method,
            path=_path(request),
            status=status,
            request_id=request.request_id,
            client_ip=client_ip(request.headers, request.client),
            user_agent=None if user_agent is None else user_agent.decode("latin-1"),
            event_count=0 if validated is None else validated.event_count,
            customer_id=validated.customer_id if validated is not None else None,
            warnings=validated.warnings if validated is not None and status == 200 else [],
            error=None
            if error is None
            else RequestError(error.type, error.message, error.attribute),
        )
        if status == 200 or not request.authenticated:
            return entry
        body = request.body
        return msgspec.structs.replace(
            entry,
            customer_id=entry.customer_id or _named_customer(request),
            headers=_recorded_headers(request.header_list),
            body=_cut(body),
            body_truncated=len(body) > REQUEST_BODY_BYTES,
        )

    @staticmethod
    def _fail(exc: ContractError, request: Request) -> bytes:
        if isinstance(exc, _RateLimited):
            exc = exc.error
        return encode(contract.error_body(exc, request.request_id))

    async def _handle(self, request: Request) -> tuple[int, bytes, Headers]:
        received_ms = request.received_ms
        self._inflated(request)  # row 1 (the length read is the transport's)
        # The two checks that may look at the store again are awaited only when the cache
        # refuses (a coroutine each on every request was ~1% of a single-event one).
        username, password = self._credentials(request)  # rows 2-7
        try:
            workspace = self._workspace(username, password)  # rows 8-11, by the cache
        except ContractError:
            workspace = await self._authenticate(username, password)
        request.authenticated = True
        self._check_headers(request)  # rows 12-13
        try:
            validated = self._validated(request, workspace, received_ms)  # rows 14-25
        except ContractError as exc:
            workspace, validated = await self._checked(request, workspace, received_ms, exc)
        request.validated = validated
        # -- Delete User (data-api.md §4): the row's check against the store --
        if self.route.precheck is not None and self.events is not None:
            await self.route.precheck(self.events, self.queue, workspace, validated)
        # -- Get User (data-api.md §5): a synchronous row answers from the store --
        if self.route.respond is not None and self.events is not None:
            charges = self._charges(workspace, validated)
            headers: Headers = []
            if charges:
                headers = rate_headers(await self._acquire(request, charges))  # row 26
            answer = await self.route.respond(self.events, self.queue, workspace, validated)
            return 200, answer, headers
        kind = self.route.kind
        if kind is None:
            raise contract.unexpected()  # a row answered from the store without a store
        key = request.headers.get(b"idempotency-key")
        fingerprint = UNKNOWN
        if key:
            request.request_id = idempotent_request_id(workspace.id, key)
            fingerprint = self.fingerprint(request.body)
            if await self._replayed(request, fingerprint):  # the first response again
                decision = await self.limiter.peek(*self.limit(workspace))
                return self._success(request, validated, decision)
        charges = self._charges(workspace, validated)
        decision = await self._acquire(request, charges)  # row 26
        envelope = Envelope(
            request_id=request.request_id,
            workspace_id=workspace.id,
            received_at=received_ms,
            project_code=request.param("project_code") if workspace.portfolio else None,
            client_ip=client_ip(request.headers, request.client),
            customer_id=validated.customer_id,
            device_id=validated.device_id,
            user_identifiers=validated.user_identifiers,
            actions=validated.actions,
            warnings=validated.warnings,
            event_count=validated.event_count if self.route.counts_events else 0,
            kind=kind,
            user_attributes=validated.user_attributes,
            update_existing_only=validated.update_existing_only,
            merges=validated.merges,
            # -- Track Device and Bulk Import --
            device=validated.device,
            elements=self._elements(validated, request, workspace, received_ms),
            delete=validated.delete,  # Delete User
            erasure=validated.erasure,  # GDPR erasure
        )
        event_count = envelope.event_count
        # While the put waits for the disk, only the envelope's encoding is held: the decoded
        # actions (and Bulk's elements) go, the answer and the request log need none of them.
        # A 200-event request's objects are ~4 x its body, and an overload holds hundreds.
        validated = request.validated = msgspec.structs.replace(
            validated, actions=[], elements=None
        )
        request.payload = None  # a refusal's log entry reads the customer id from the body
        putting = self.queue.put(envelope, idempotent=bool(key), fingerprint=fingerprint)
        del envelope
        try:
            stored = await putting  # row 27
        except QueueUnavailable as exc:
            log.warning("queue refused request %s: %s", request.request_id, exc)
            await self._refund_all(charges)
            raise contract.queue_unavailable() from exc
        if not stored:  # a concurrent request with the same key won: this one ingests nothing
            await self._refund_all(charges)
            await self._replayed(request, fingerprint)  # and it was the same request, or 422
            return self._success(request, validated, decision)
        self.counters.accepted_events += event_count
        request.stored_events = event_count
        if validated.warnings:
            self.counters.warnings.update(w.reason for w in validated.warnings)
        return self._success(request, validated, decision)

    def fingerprint(self, body: bytes) -> str:
        """What an idempotent request was: its endpoint and its body (as inflated), hashed."""
        digest = hashlib.blake2b(self.route.pattern.encode(), digest_size=16)
        digest.update(b"\0")
        digest.update(body)
        return digest.hexdigest()

    async def _replayed(self, request: Request, fingerprint: str) -> bool:
        """Whether an Idempotency-Key was used before: by this same request (True: answer as
        the first time), or by another body or endpoint (the IETF Idempotency-Key draft's
        422). False when it is new."""
        try:
            first = await self.queue.remembered(request.request_id)
        except QueueUnavailable as exc:
            log.warning("queue unavailable for request %s: %s", request.request_id, exc)
            raise contract.queue_unavailable() from exc
        if first is None:
            return False
        if first in (UNKNOWN, fingerprint):
            return True
        self.counters.idempotency_conflicts += 1
        raise contract.idempotency_key_reused()

    async def _refund(self, key: str, cost: int) -> None:
        """Nothing of a 503 is kept, its quota included."""
        try:
            await self.limiter.refund(key, cost)
        except Exception:
            log.exception("could not refund %d events to %s", cost, key)

    # -- Track Device and Bulk Import: a request may charge several buckets (`V1Route.costs`) --

    def _charges(self, workspace: Workspace, validated: Validated) -> list[tuple[str, int, int]]:
        """(limiter key, cost, limit) of each bucket the request charges, in the route's order."""
        return [
            (bucket.key(workspace.id), cost, bucket.limit(workspace))
            for bucket, cost in self.route.charges(validated)
        ]

    async def _acquire(self, request: Request, charges: list[tuple[str, int, int]]) -> Decision:
        """Row 26: every bucket admits its cost, or none keeps any (a refusal refunds those
        charged before it). The first bucket's decision is the 200's headers."""
        decisions: list[Decision] = []
        try:
            for done, (key, cost, limit) in enumerate(charges):
                decision = await self.limiter.acquire(key, cost, limit)
                if not decision.allowed:
                    await self._refund_all(charges[:done])
                    raise _RateLimited(decision, self.route.rate_limited())
                decisions.append(decision)
        except BackendError as exc:
            log.warning("rate limiter failed on request %s: %s", request.request_id, exc)
            await self._refund_all(charges[: len(decisions)])
            raise contract.queue_unavailable() from exc
        return decisions[0]

    async def _refund_all(self, charges: list[tuple[str, int, int]]) -> None:
        for key, cost, _ in charges:
            if cost:
                await self._refund(key, cost)

    @staticmethod
    def _elements(
        validated: Validated, request: Request, workspace: Workspace, received_ms: int
    ) -> list[Envelope] | None:
        """Bulk Import: each valid element as the envelope its own endpoint would queue."""
        if validated.elements is None:
            return None
        project_code = request.param("project_code") if workspace.portfolio else None
        return [
            Envelope(
                request_id=request.request_id,
                workspace_id=workspace.id,
                received_at=received_ms,
                project_code=project_code,
                client_ip=client_ip(request.headers, request.client),
                customer_id=v.customer_id,
                device_id=v.device_id,
                user_identifiers=v.user_identifiers,
                actions=v.actions,
                warnings=v.warnings,
                event_count=v.event_count if kind is Kind.EVENT else 0,
                kind=kind,
                user_attributes=v.user_attributes,
                update_existing_only=v.update_existing_only,
                device=v.device,
            )
            for kind, v in validated.elements
        ]

    def limit(self, workspace: Workspace) -> tuple[str, int]:
        """The limiter key and limit of the route's bucket in this workspace."""
        bucket = self.route.bucket
        return bucket.key(workspace.id), bucket.limit(workspace)

    def _success(
        self, request: Request, validated: Validated, decision: Decision
    ) -> tuple[int, bytes, Headers]:
        body = self.route.answer(request.request_id, validated.warnings)  # the row's 200
        return 200, body, rate_headers(decision)

    def _inflated(self, request: Request) -> None:
        encoding = request.headers.get(b"content-encoding", b"").strip().lower()
        if encoding in GZIP_ENCODINGS and request.body:
            request.body = self._inflate(request, request.body)

    def _inflate(self, request: Request, body: bytes) -> bytes:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            inflated = inflater.decompress(body, self.max_body + 1)
        except zlib.error:
            request.inflate_failed = True
            return body
        if len(inflated) > self.max_body:
            raise contract.payload_too_large()
        if not inflater.eof or inflater.unused_data:
            request.inflate_failed = True
        return inflated

    async def _authenticate(self, username: str, password: str) -> Workspace:
        """Rows 8-11 again once the cache refused: it may not know yet what the CLI just
        granted."""
        await self.registry.refresh()
        return self._workspace(username, password)

    def _credentials(self, request: Request) -> tuple[str, str]:
        if self._header_workspace:  # Test connection
            return self._header_credentials(request)
        username, password = self._parse_basic(request.headers.get(b"authorization"))  # 2-5
        app_id = request.param("app_id")
        if not request.workspace_id and self.route.workspace_from is WorkspaceFrom.QUERY:
            raise contract.params_required()  # data-api.md §0
        if request.workspace_id != username or (app_id is not None and app_id != username):
            raise contract.app_key_mismatch()  # row 6
        moe_appkey = request.headers.get(b"moe-appkey")
        if moe_appkey is not None and moe_appkey.decode("latin-1").strip() != username:
            raise contract.moe_appkey_mismatch()  # row 7
        return username, password

    # -- Test connection (data-api.md §7) --
    @staticmethod
    def _header_credentials(request: Request) -> tuple[str, str]:
        """The workspace from `MOE-APPKEY` and the body's `app_id` (equal), the key from the
        body's `app_secret`; every failure a 401 in the standard envelope (REF §6.8)."""
        header = request.headers.get(b"moe-appkey")
        if header is None or not header.strip():
            raise contract.moe_appkey_missing()
        request.workspace_id = header.decode("latin-1").strip()
        try:
            payload = _decode_json(request.body) if request.body else None
        except msgspec.DecodeError:
            payload = None
        if not isinstance(payload, dict):
            raise contract.no_identity()
        app_id, secret = payload.get("app_id"), payload.get("app_secret")
        if not isinstance(app_id, str) or not app_id:
            raise contract.app_key_missing()
        if not isinstance(secret, str) or not secret:
            raise contract.app_secret_missing()
        if app_id != request.workspace_id:
            raise contract.moe_appkey_mismatch()
        return app_id, secret

    def _workspace(self, username: str, password: str) -> Workspace:
        workspace = self.registry.get(username)
        if workspace is None:
            raise contract.unknown_workspace()  # row 8
        if workspace.key_hash is None and self.route.workspace_from is WorkspaceFrom.HEADER:
            raise contract.wrong_key()  # Test connection: every failure a 401 (REF §6.8)
        check_key(password, workspace.key_hash, self._key_matches)  # rows 9-10
        if workspace.suspended:
            raise contract.suspended()  # row 11
        return workspace

    @staticmethod
    def _check_headers(request: Request) -> None:
        content_type = request.headers.get(b"content-type")
        if content_type is None:
            raise contract.content_type_missing()  # row 12
        media_type = content_type.split(b";", 1)[0].strip().lower()
        encoding = request.headers.get(b"content-encoding", b"").strip().lower()
        if media_type != b"application/json" or encoding not in IDENTITY_ENCODINGS | GZIP_ENCODINGS:
            raise contract.unsupported_media_type()  # row 13

    async def _checked(
        self, request: Request, workspace: Workspace, received_ms: int, exc: ContractError
    ) -> tuple[Workspace, Validated]:
        """Rows 14-25 refused `exc`: a project code the cache does not know is looked for in
        the store once before it is refused (a `trackd project create` that just returned)."""
        if exc.attribute != "project_code":
            raise exc
        await self.registry.refresh()
        workspace = self.registry.get(workspace.id) or workspace
        return workspace, self._validated(request, workspace, received_ms)

    def _validated(self, request: Request, workspace: Workspace, received_ms: int) -> Validated:
        """Rows 14-25: the route's typed fast path for a plain body, else the generic one."""
        project_code = request.param("project_code")
        decode = self.route.decode
        if decode is not None and request.body and not request.inflate_failed:
            validated = decode(request.body, workspace, project_code, received_ms)
            if validated is not None:
                return validated
        payload = request.payload = self._decode(request, self.route.malformed_json)  # 14-15
        return self.route.validate(payload, workspace, project_code, received_ms)

    @staticmethod
    def _decode(
        request: Request, malformed_json: Callable[[], ContractError] = contract.malformed_json
    ) -> object:
        if not request.body:
            raise contract.empty_body()  # row 14
        if request.inflate_failed:
            raise malformed_json()  # row 15
        try:
            return _decode_json(request.body)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise malformed_json() from exc

    async def _error_headers(self, exc: ContractError, request: Request) -> Headers:
        if isinstance(exc, _RateLimited):
            retry_after = str(max(exc.decision.reset, 1)).encode()
            return [*rate_headers(exc.decision), (b"retry-after", retry_after)]
        headers = await self._peek_headers(request)
        if exc.status == 503:
            headers.append((b"retry-after", RETRY_AFTER_UNAVAILABLE))
        return headers

    async def _peek_headers(self, request: Request) -> Headers:
        workspace = self.registry.get(request.workspace_id)
        if workspace is None:
            return []
        try:
            decision = await self.limiter.peek(*self.limit(workspace))
        except Exception:
            log.exception("rate limiter unavailable for headers")
            return []
        return rate_headers(decision)


class _RateLimited(ContractError):
    """Row 26 in the route's wording (`V1Route.rate_limited`), carrying the decision for its
    headers."""

    def __init__(self, decision: Decision, error: ContractError) -> None:
        super().__init__(error.status, error.type, error.message)
        self.decision = decision
        self.error = error  # its body's shape (Delete User's is titled, REF §2.1)


def rate_headers(decision: Decision) -> Headers:
    return [
        (b"x-ratelimit-limit", str(decision.limit).encode()),
        (b"x-ratelimit-remaining", str(decision.remaining).encode()),
        (b"x-ratelimit-reset", str(decision.reset).encode()),
    ]


# -- Request log (issue 13 item 1) --

REDACTED = "[redacted]"


class _NamesCustomer(msgspec.Struct):
    customer_id: object = None


_decode_customer = msgspec.json.Decoder(_NamesCustomer).decode


def _path(request: Request) -> str:
    """The path as sent (percent-encoded), with its query string."""
    path, query = request.raw_path.decode("latin-1"), request.query_string
    return f"{path}?{query.decode('latin-1')}" if query else path


def _named_customer(request: Request) -> str | None:
    """The `customer_id` a rejected body names, if it names one as text (to erase it)."""
    payload = request.payload
    if payload is None and request.body and not request.inflate_failed:
        try:
            payload = msgspec.structs.asdict(_decode_customer(request.body))
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
            return None
    if isinstance(payload, dict):
        customer_id = payload.get("customer_id")
        if isinstance(customer_id, str):
            return customer_id
    return None


def _recorded_headers(header_list: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Every request header (repeated ones joined by ", "), Authorization redacted."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in header_list:
        name = raw_name.decode("latin-1").lower()
        value = REDACTED if name == "authorization" else raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _cut(body: bytes) -> bytes:
    """The first `REQUEST_BODY_BYTES` of a body, not cutting a UTF-8 character in two."""
    if len(body) <= REQUEST_BODY_BYTES:
        return body
    end = REQUEST_BODY_BYTES
    for back in range(1, 4):  # a character is at most 4 bytes: its start is at most 3 back
        if body[end - back] & 0xC0 != 0x80:  # not a continuation byte: a start (or ASCII)
            lead = body[end - back]
            size = 1 if lead < 0x80 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
            return body[: end - back] if size > back else body[:end]
    return body[:end]
