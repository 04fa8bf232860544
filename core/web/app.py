"""The web app: webhooks in, the operator's dashboard, health and metrics.

Server-rendered pages (Jinja2, autoescaped; a few lines of plain JS refresh the overview), each a
thin view over ``core.sync.operations`` — the CLI calls the same functions. Store work runs in
Starlette's thread pool, so a slow query never blocks the event loop that takes webhooks.

The app knows nothing of queues: ``create_app(on_accepted=…)`` is told what to do when webhook
events landed in the inbox (the workers wire it to enqueue the ingest actor), ``on_work`` what to
do when an operator queued writes (a replay, a resolution: the workers ask for flushes).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import jinja2
import structlog
from sqlalchemy import select, text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from core import metrics
from core.connector import WebhookRejected
from core.errors import ConfigError, TransientError
from core.logging import register_secrets, scrub, secret_values
from core.store.schema import golden, inbox
from core.sync import intake
from core.sync import operations as ops
from core.sync import trace as tracing
from core.sync.pipeline import Pipeline
from core.web.auth import COOKIE, SESSION_SECONDS, Credentials, Session, Sessions

log = structlog.get_logger("synchub.web")
HERE = Path(__file__).resolve().parent
MAX_WEBHOOK_BYTES = 1024 * 1024

OnAccepted = Callable[[list[int]], None]


@dataclass
class Ctx:
    """What a page or action handler gets: the request, who asks, their session, the form."""

    request: Request
    user: str
    session: Session
    form: FormData | None = None

    def q(self, name: str) -> str:
        return self.request.query_params.get(name, "").strip()

    def f(self, name: str) -> str:
        value = self.form.get(name) if self.form is not None else None
        return value.strip() if isinstance(value, str) else ""


def _jsonish(value: Any) -> str:
    if value is None:
        return "—"
    return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)


def _ago(value: datetime | None) -> str:
    if value is None:
        return "never"
    seconds = (datetime.now(UTC) - value).total_seconds()
    return _duration(seconds) + " ago"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(seconds, 0.0)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _finalize(value: Any) -> Any:
    # every {{ }} goes through here: a registered secret never reaches a page
    return scrub(value) if isinstance(value, str) else value


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=True,
        finalize=_finalize,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["jsonish"] = _jsonish
    env.filters["ago"] = _ago
    env.filters["duration"] = _duration
    env.filters["pretty"] = lambda v: json.dumps(v, ensure_ascii=False, default=str, indent=2, sort_keys=True)
    return env


def create_app(
    pipeline: Pipeline,
    *,
    credentials: Credentials | None = None,
    on_accepted: OnAccepted | None = None,
    on_work: Callable[[], None] | None = None,
    ready_checks: Mapping[str, Callable[[], None]] | None = None,
    links: Mapping[str, str] | None = None,
    session_key: bytes | None = None,
    max_webhook_bytes: int = MAX_WEBHOOK_BYTES,
    refresh_seconds: float = 5.0,
) -> Starlette:
    """The ASGI app over one pipeline.

    ``credentials``: required to serve beyond loopback (see ``core.web.server``); with none, every
    local visitor is the operator ``local``. ``ready_checks``: name → a callable raising when that
    dependency (the broker) is unreachable, for ``/readyz``. ``links``: system → a URL template with
    ``{native_id}`` for the record trace's link-outs (default: the connector's ``link_template``).
    """
    env = _templates()
    sessions = Sessions(session_key)
    registry = metrics.registry_for(pipeline)
    checks = dict(ready_checks or {})
    for system in pipeline.systems.all():
        if system.connector is not None:
            register_secrets(secret_values(system.connector.settings))

    def link_for(system: str, native_id: str) -> str | None:
        template = (links or {}).get(system)
        if template is None:
            try:
                connector = pipeline.systems.get(system).connector
            except ConfigError:
                connector = None
            setting = connector.settings.get("link_template") if connector is not None else None
            template = setting if isinstance(setting, str) else None
        return template.replace("{native_id}", quote(native_id, safe="")) if template else None

    def render(ctx: Ctx, name: str, code: int = 200, **values: Any) -> HTMLResponse:
        page = env.get_template(name).render(
            user=ctx.user,
            csrf=ctx.session.csrf,
            msg=ctx.q("msg"),
            path=ctx.request.url.path,
            refresh_ms=int(refresh_seconds * 1000),
            **values,
        )
        return HTMLResponse(page, status_code=code)

    def back(to: str, msg: str) -> RedirectResponse:
        parts = urlsplit(to)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "msg"] + [("msg", msg)]
        return RedirectResponse(f"{_local(parts.path or '/')}?{urlencode(query)}", status_code=303)

    def worked() -> None:
        if on_work is not None:
            try:
                on_work()
            except Exception:  # the work is in the store: the sweep finds it if the hint is lost
                log.exception("on_work.failed")

    # --- guards ---------------------------------------------------------------------------------

    def finish(response: Response, session: Session, request: Request) -> Response:
        if session.fresh:
            response.set_cookie(
                COOKIE,
                sessions.dump(session),
                max_age=SESSION_SECONDS,
                httponly=True,
                samesite="lax",
                secure=request.url.scheme == "https",
            )
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    def who(request: Request, session: Session) -> str | None:
        if credentials is None:
            return session.user or "local"
        if session.user:
            return session.user
        return credentials.check_header(request.headers.get("authorization"))

    def page(fn: Callable[[Ctx], Response]) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            session = sessions.load(request.cookies.get(COOKIE)) or sessions.new()
            user = await run_in_threadpool(who, request, session)
            if user is None:
                if request.url.path == "/metrics":
                    return PlainTextResponse("authentication required", 401, headers={"WWW-Authenticate": "Bearer"})
                target = "/login?" + urlencode({"next": request.url.path})
                return finish(RedirectResponse(target, status_code=303), session, request)
            response = await run_in_threadpool(fn, Ctx(request, user, session))
            return finish(response, session, request)

        return handler

    def action(fn: Callable[[Ctx], Response]) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            session = sessions.load(request.cookies.get(COOKIE))
            if session is None:
                return PlainTextResponse("refused: no valid session (open the page first)", 403)
            user = session.user or ("local" if credentials is None else None)
            if user is None:
                return PlainTextResponse("refused: not logged in", 403)
            form = await request.form(max_files=0, max_fields=2000)
            token = form.get("csrf")
            if not isinstance(token, str) or not ops_compare(token, session.csrf):
                return PlainTextResponse("refused: missing or wrong CSRF token", 403)
            try:
                response = await run_in_threadpool(fn, Ctx(request, user, session, form))
            except ops.OperationError as exc:
                return back(_referer_path(request), f"not done: {exc}")
            return finish(response, session, request)

        return handler

    # --- login ----------------------------------------------------------------------------------

    async def login_page(request: Request) -> Response:
        session = sessions.load(request.cookies.get(COOKIE)) or sessions.new()
        if credentials is None:
            return finish(RedirectResponse("/", status_code=303), session, request)
        ctx = Ctx(request, "", session)
        kind = credentials.kind
        return finish(render(ctx, "login.html", kind=kind, next=_local(ctx.q("next") or "/")), session, request)

    async def login(request: Request) -> Response:
        session = sessions.load(request.cookies.get(COOKIE))
        form = await request.form(max_files=0, max_fields=10)
        token = form.get("csrf")
        if session is None or not isinstance(token, str) or not ops_compare(token, session.csrf):
            return PlainTextResponse("refused: missing or wrong CSRF token", 403)
        if credentials is None:
            return RedirectResponse("/", status_code=303)
        secret = form.get("secret")
        username = form.get("username")
        ok = await run_in_threadpool(
            credentials.verify,
            username if isinstance(username, str) else None,
            secret if isinstance(secret, str) else "",
        )
        if not ok:
            log.warning("login.failed", client=request.client.host if request.client else None)
            return RedirectResponse("/login?" + urlencode({"msg": "wrong credentials"}), status_code=303)
        fresh = sessions.new(credentials.actor)  # a new session (and CSRF token) on login
        nxt = form.get("next")
        response = RedirectResponse(_local(nxt if isinstance(nxt, str) else "/"), status_code=303)
        log.info("login", user=credentials.actor)
        return finish(response, fresh, request)

    async def logout(request: Request) -> Response:
        session = sessions.load(request.cookies.get(COOKIE))
        form = await request.form(max_files=0, max_fields=10)
        token = form.get("csrf")
        if session is None or not isinstance(token, str) or not ops_compare(token, session.csrf):
            return PlainTextResponse("refused: missing or wrong CSRF token", 403)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    # --- pages ----------------------------------------------------------------------------------

    def overview(ctx: Ctx) -> Response:
        flows = ops.overview(pipeline)
        return render(ctx, "overview.html", flows=flows, totals=_totals(flows))

    def overview_fragment(ctx: Ctx) -> Response:
        flows = ops.overview(pipeline)
        return render(ctx, "_flows.html", flows=flows, totals=_totals(flows))

    def overview_json(ctx: Ctx) -> Response:
        return JSONResponse(
            [
                {**f.__dict__, "last_success": f.last_success.isoformat() if f.last_success else None}
                for f in ops.overview(pipeline)
            ]
        )

    def dead_letter_list(ctx: Ctx) -> Response:
        status = ctx.q("status") if "status" in ctx.request.query_params else "open"
        filters = {"system": ctx.q("system"), "entity": ctx.q("entity"), "error_kind": ctx.q("error_kind")}
        rows = ops.list_dead_letters(
            pipeline.store,
            status=status or None,
            system=filters["system"] or None,
            entity=filters["entity"] or None,
            error_kind=filters["error_kind"] or None,
        )
        return render(
            ctx,
            "deadletters.html",
            rows=rows,
            facets=ops.dead_letter_facets(pipeline.store),
            filters=filters,
            status=status,
            here=str(ctx.request.url.path) + ("?" + ctx.request.url.query if ctx.request.url.query else ""),
        )

    def dead_letter_detail(ctx: Ctx) -> Response:
        dl_id = int(ctx.request.path_params["id"])
        row = ops.get_dead_letter(pipeline.store, dl_id)
        if row is None:
            return render(ctx, "message.html", 404, title="Not found", text=f"no dead letter {dl_id}")
        audit = ops.audit_trail(pipeline.store, target=f"dead_letter:{dl_id}")
        return render(ctx, "deadletter.html", row=row, audit=audit)

    def dead_letters_replay(ctx: Ctx) -> Response:
        ids = _ids(ctx.form)
        if not ids:
            raise ops.OperationError("select at least one dead letter")
        done = ops.replay_dead_letters(pipeline, ids, actor=ctx.user)
        worked()
        summary = ", ".join(f"#{r.dead_letter_id} {r.outcome}" for r in done) or "nothing to replay"
        return back(_local(ctx.f("back") or "/deadletters"), f"replayed: {summary}")

    def dead_letter_edit(ctx: Ctx) -> Response:
        dl_id = int(ctx.request.path_params["id"])
        try:
            payload = json.loads(ctx.f("payload"))
        except ValueError as exc:
            raise ops.OperationError(f"the payload is not valid JSON: {exc}") from None
        done = ops.edit_and_replay(pipeline, dl_id, payload, actor=ctx.user)
        worked()
        return back(f"/deadletters/{dl_id}", f"edited and replayed: {done.outcome}")

    def dead_letters_discard(ctx: Ctx) -> Response:
        ids = _ids(ctx.form)
        if not ids:
            raise ops.OperationError("select at least one dead letter")
        n = ops.discard_dead_letters(pipeline.store, ids, reason=ctx.f("reason"), actor=ctx.user, now=pipeline.clock())
        return back(_local(ctx.f("back") or "/deadletters"), f"discarded {n} dead letter(s)")

    def conflict_list(ctx: Ctx) -> Response:
        status = ctx.q("status") if "status" in ctx.request.query_params else "open"
        return render(
            ctx,
            "conflicts.html",
            rows=ops.list_conflicts(pipeline.store, status=status or None),
            merges=ops.list_merge_candidates(pipeline.store),
            status=status,
        )

    def conflict_resolve(ctx: Ctx) -> Response:
        c_id = int(ctx.request.path_params["id"])
        choice = ctx.f("choice")
        value: Any = None
        if choice == "value":
            current = ops.get_conflict(pipeline.store, c_id)
            value = _typed(ctx.f("value"), current.golden.value if current else None)
        rows = ops.resolve_conflict(pipeline, c_id, choice, value=value, actor=ctx.user)  # type: ignore[arg-type]
        worked()
        return back("/conflicts", f"conflict #{c_id} resolved ({choice}); {rows} write(s) queued")

    def merge_decide(ctx: Ctx) -> Response:
        m_id = int(ctx.request.path_params["id"])
        decision = ctx.f("decision")
        rows = ops.decide_merge(pipeline, m_id, decision, into=ctx.f("into") or None, actor=ctx.user)  # type: ignore[arg-type]
        worked()
        return back("/conflicts", f"merge candidate #{m_id}: {decision}; {rows} write(s) queued")

    def trace_page(ctx: Ctx) -> Response:
        entity = ctx.q("entity") or "customer"
        key = ctx.q("q")
        entities = sorted({e for s in pipeline.systems.all() for e in s.flows})
        records = tracing.trace(pipeline.store, entity, key) if key else []
        timelines = {r.canonical_id: ops.timeline(pipeline.store, entity, r.canonical_id) for r in records}
        linked = {
            r.canonical_id: {s: (nid, link_for(s, nid)) for s, nid in sorted(r.native_ids.items())} for r in records
        }
        return render(
            ctx,
            "trace.html",
            entity=entity,
            entities=entities,
            key=key,
            records=records,
            timelines=timelines,
            linked=linked,
        )

    def audit_page(ctx: Ctx) -> Response:
        return render(ctx, "audit.html", rows=ops.audit_trail(pipeline.store, limit=300))

    def metrics_page(ctx: Ctx) -> Response:
        return Response(metrics.render(registry), media_type=metrics.CONTENT_TYPE)

    # --- webhooks, health -----------------------------------------------------------------------

    async def webhook(request: Request) -> Response:
        name = request.path_params["system"]
        try:
            system = pipeline.systems.get(name)
        except ConfigError:
            return JSONResponse({"error": "unknown system"}, 404)
        if system.connector is None:
            return JSONResponse({"error": "system has no connector here"}, 404)
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_webhook_bytes):
            return await refused(name, request.headers, None, WebhookRejected("body too large", status=413))
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_webhook_bytes:
                return await refused(name, request.headers, None, WebhookRejected("body too large", status=413))
            chunks.append(chunk)
        body = b"".join(chunks)

        def land() -> intake.Intake:
            # one trip to the thread pool for both: each trip waits for a thread and for the GIL
            got = intake.receive(pipeline, name, request.headers, body)
            if got.accepted and on_accepted is not None:
                try:
                    on_accepted(got.accepted)
                except Exception:  # the events are in the inbox: the sweep ingests them anyway
                    log.exception("on_accepted.failed", system=name)
            return got

        try:
            got = await run_in_threadpool(land)
        except WebhookRejected as exc:
            return await refused(name, request.headers, body, exc)
        except TransientError as exc:  # the connector needed its system to verify: ask for a redelivery
            log.warning("webhook.deferred", system=name, error=type(exc).__name__)
            await run_in_threadpool(intake.keep_refused, pipeline, name, request.headers, body, exc, 503)
            retry = str(max(1, round(exc.retry_after or 30)))
            return JSONResponse({"error": "temporarily unavailable; redeliver later"}, 503, {"Retry-After": retry})
        return JSONResponse({"accepted": len(got.accepted), "duplicates": got.duplicates}, 202)

    async def refused(name: str, headers: Any, body: bytes | None, exc: WebhookRejected) -> Response:
        """Answer a refused webhook with its status and reason, and keep it (see core.sync.intake)."""
        log.warning("webhook.rejected", system=name, status=exc.status, reason=str(exc)[:200])
        await run_in_threadpool(intake.keep_refused, pipeline, name, headers, body, exc, exc.status)
        return JSONResponse({"error": str(exc)[:200]}, exc.status)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        def store_check() -> None:
            # reads only: a probe every few seconds must not queue for the write lock webhooks wait on
            with pipeline.store.read() as conn:
                conn.execute(text("SELECT 1"))
                conn.execute(select(golden.c.id).limit(1))
            with pipeline.store.inbox.read() as conn:  # where webhooks land (on SQLite its own file)
                conn.execute(select(inbox.c.id).limit(1))

        results: dict[str, str] = {}
        for name, check in {"store": store_check, **checks}.items():
            try:
                await run_in_threadpool(check)
                results[name] = "ok"
            except Exception as exc:
                results[name] = f"unreachable: {type(exc).__name__}"
        ok = all(v == "ok" for v in results.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", **results}, 200 if ok else 503)

    routes = [
        Route("/", page(overview)),
        Route("/overview.fragment", page(overview_fragment)),
        Route("/api/overview", page(overview_json)),
        Route("/deadletters", page(dead_letter_list)),
        Route("/deadletters/replay", action(dead_letters_replay), methods=["POST"]),
        Route("/deadletters/discard", action(dead_letters_discard), methods=["POST"]),
        Route("/deadletters/{id:int}", page(dead_letter_detail)),
        Route("/deadletters/{id:int}/edit", action(dead_letter_edit), methods=["POST"]),
        Route("/conflicts", page(conflict_list)),
        Route("/conflicts/{id:int}/resolve", action(conflict_resolve), methods=["POST"]),
        Route("/merges/{id:int}", action(merge_decide), methods=["POST"]),
        Route("/trace", page(trace_page)),
        Route("/audit", page(audit_page)),
        Route("/metrics", page(metrics_page)),
        Route("/login", login_page),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/webhooks/{system}", webhook, methods=["POST"]),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.credentials = credentials
    app.state.pipeline = pipeline
    return app


def ops_compare(given: str, expected: str) -> bool:
    """CSRF token comparison, constant time."""
    import hmac

    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def _local(target: str) -> str:
    """Only same-site paths as redirect targets (no open redirect to another host)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _referer_path(request: Request) -> str:
    """The page an action came from (its path and query), if it is one of ours."""
    parts = urlsplit(request.headers.get("referer") or "")
    if parts.netloc and parts.netloc != request.url.netloc:
        return "/"
    path = _local(parts.path or "/")
    # drop an earlier message: the new one replaces it
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "msg"])
    return f"{path}?{query}" if query else path


def _ids(form: FormData | None) -> list[int]:
    if form is None:
        return []
    out = []
    for value in form.getlist("ids"):
        if isinstance(value, str) and value.strip().isdigit():
            out.append(int(value))
    return out


def _typed(raw: str, like: Any) -> Any:
    """A typed-in value: for a text field, the text as typed; otherwise JSON when it parses
    (``42``, ``true``, ``["a", "b"]``), else the text."""
    if isinstance(like, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _totals(flows: list[ops.FlowStatus]) -> dict[str, Any]:
    return {
        "dead_letters": sum(f.dead_letters for f in flows),
        "outbox_pending": sum(f.outbox_pending for f in flows),
        "inbox_pending": sum(f.inbox_pending for f in flows),
        "failing": sum(1 for f in flows if f.state == "failing"),
    }
