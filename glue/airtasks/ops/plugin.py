"""Air-Tasks' Airflow 3 plugin: the "Cluster" page in the Airflow UI, and its JSON API.

Registered through the `airflow.plugins` entry point of the `airtasks` package (pyproject.toml),
so every Airflow that has `airtasks` installed (the image, `make up`) loads it; nothing is copied
into a plugins folder. It adds:

- a FastAPI app mounted at `/airtasks`: `/airtasks/` (the page), `/airtasks/visualizer` (the
  nodes only: what the proxy serves at `/visualizer`), `/airtasks/api/view` (JSON: the document
  of `airtasks status --json`; `?hours=` narrows the chart window, `?queue=` (repeatable) reads
  only those queues, and each queue's nodes come in pages: `?offset=`, `?limit=` (default 100));
  the pages take `?queue=` and `?offset=` too;
- an external view "Cluster" in the UI's navigation bar, which frames `/airtasks/`.

Authentication: Airflow attaches a plugin's app with `app.mount()`, and a mount inherits none of
the core API's dependencies, so plugin routes are public unless the plugin checks them (Airflow
documents this since apache/airflow#72655). Every route here depends on `viewer`, which does what
the core API does: `airflow.api_fastapi.core_api.security.get_user` (a `Bearer` JWT, else the UI's
`_token` cookie), then the auth manager's `is_authorized_view(CLUSTER_ACTIVITY)`, the permission
behind Airflow's own cluster activity page. No login: 401 for API clients, a redirect to the
login page for browsers; logged in without that permission: 403.

The page reads Airflow's REST API with a fresh JWT of the viewer (so it shows what the viewer may
read), RabbitMQ with the `AIRTASKS_RABBITMQ_*` credentials of the API server's environment, the
group backend with the machine's cloud credentials, the Swarm through the Docker API when the
config names one it can reach, else the node list the scaler recorded. Config: env
`AIRTASKS_CONFIG`, else the Variable `airtasks_scaler_config` (as the scaler DAG).
Airflow imports plugins in all its processes: this module imports only FastAPI and the Airflow
plugin class at import time, the rest when a request comes. The API server alone enters the app's
lifespan, which warms up in the background (`warm_up`): the first read need not import the view
and build the cloud SDK's clients, tens of seconds on a busy host.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

if TYPE_CHECKING:
    from airtasks.ops.view import ClusterView

PREFIX = "/airtasks"
FRAGMENT_HEADER = "x-airtasks-fragment"

log = logging.getLogger(__name__)


def warm_up() -> None:
    """Import what a read of the view runs and build the config's backend clients (shared by every
    later read, see `airtasks.wiring.shared_backend`). No group is read. A failure
    is only logged: the first read meets it again and shows it on the page."""
    try:
        from airtasks.backends import warm  # noqa: PLC0415
        from airtasks.ops.page import render_page  # noqa: PLC0415, F401 - importing is the work
        from airtasks.ops.view import build_view  # noqa: PLC0415, F401
        from airtasks.scaling.task import load_task_config  # noqa: PLC0415
        from airtasks.wiring import shared_backend  # noqa: PLC0415

        config = load_task_config(_get_variable).config
        warm(shared_backend(config))
    except Exception as exc:
        log.warning("airtasks: the Cluster page did not warm up (%s); its first read will", exc)
        return
    log.info("airtasks: the Cluster page's %s clients are ready", config.backend)


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    """Airflow's API server enters its plugin apps' lifespans as it starts (no other process
    does): warm up beside it, so that neither its start nor the first viewer waits."""
    threading.Thread(target=warm_up, name="airtasks-warm-up", daemon=True).start()
    yield


app = FastAPI(
    title="Air-Tasks operations view",
    description="The cluster, its queues and the scaler's decisions.",
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
    lifespan=lifespan,
)


@dataclass(frozen=True)
class Viewer:
    name: str
    token: str
    """A fresh JWT for this user, to read Airflow's REST API as them."""


async def viewer(request: Request) -> Viewer:
    """Authenticate as the core API does, and require the cluster activity view permission."""
    from airflow.api_fastapi.app import get_auth_manager  # noqa: PLC0415
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView  # noqa: PLC0415
    from airflow.api_fastapi.core_api.security import get_user  # noqa: PLC0415
    from fastapi.security import HTTPAuthorizationCredentials  # noqa: PLC0415

    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    bearer = None
    if scheme.lower() == "bearer" and credentials.strip():
        bearer = HTTPAuthorizationCredentials(scheme="Bearer", credentials=credentials.strip())
    user = await get_user(request, None, bearer)
    manager = get_auth_manager()
    if not manager.is_authorized_view(access_view=AccessView.CLUSTER_ACTIVITY, user=user):
        raise HTTPException(status_code=403, detail="Forbidden: needs access to the cluster activity view")
    return Viewer(user.get_name(), manager.generate_jwt(user))


ViewerDep = Annotated[Viewer, Depends(viewer)]


@app.exception_handler(HTTPException)
async def _auth_errors(request: Request, exc: HTTPException) -> Response:
    """Browsers that are not logged in go to the login page; everything else gets the status."""
    wants_html = "text/html" in request.headers.get("accept", "") and "/api/" not in request.url.path
    if exc.status_code == 401 and wants_html and FRAGMENT_HEADER not in request.headers:
        from airflow.api_fastapi.app import get_auth_manager  # noqa: PLC0415

        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        login = get_auth_manager().get_url_login(next_url=target)
        if "next=" not in login:
            login += ("&" if "?" in login else "?") + f"next={quote(target, safe='/')}"
        return RedirectResponse(login, status_code=302)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def _get_variable(key: str) -> str | None:
    from airflow.models import Variable  # noqa: PLC0415 - the API server reads its own metadata DB

    value = Variable.get(key, default_var=None)
    return None if value is None else str(value)


def current_view(token: str, hours: float | None = None, queues: list[str] | None = None) -> ClusterView:
    """The view for a viewer's request (blocking: FastAPI runs these routes in its thread pool).
    An unknown queue in `queues` is a 404 naming the queues there are."""
    from airtasks.errors import AirtasksError  # noqa: PLC0415
    from airtasks.ops.view import UnknownQueue, build_view, empty_view  # noqa: PLC0415
    from airtasks.scaling.task import load_task_config  # noqa: PLC0415
    from airtasks.wiring import build_clients  # noqa: PLC0415

    try:
        config = load_task_config(_get_variable).config
    except AirtasksError as exc:
        return empty_view(str(exc))
    clients = build_clients(config, read_only=True, airflow_token=token, share_backend=True)
    try:
        window = hours * 3600.0 if hours is not None else None
        return build_view(config, clients, window_seconds=window, queues=queues or None)
    except UnknownQueue as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    finally:
        clients.close()


def _page(request: Request, token: str, section: Any, queues: list[str] | None, offset: int) -> HTMLResponse:
    from airtasks.ops.page import render_content, render_page  # noqa: PLC0415

    view = current_view(token, queues=queues)
    fragment = FRAGMENT_HEADER in request.headers
    render = render_content if fragment else render_page
    body = render(view, section, nodes_offset=offset)
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="#64748b" '
    'stroke-width="2"><rect x="3" y="4" width="18" height="5" rx="1"/>'
    '<rect x="3" y="15" width="18" height="5" rx="1"/><path d="M7 6.5h.01M7 17.5h.01M12 9v6"/></svg>'
)


@app.get("/icon.svg", include_in_schema=False)
def icon() -> Response:
    """The navigation icon: a static picture, the one route without a login."""
    return Response(ICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})


QueueParam = Annotated[list[str] | None, Query(description="only these queues (repeatable)")]
OffsetParam = Annotated[int, Query(ge=0, description="each queue's nodes from this one on")]
# Its default is airtasks.ops.view.NODES_PAGE, written out: this module imports no airtasks code
# until a request comes (see the module docstring).
LimitParam = Annotated[int, Query(ge=1, le=1000, description="nodes per queue in this page")]


@app.get("/", response_class=HTMLResponse)
def cluster_page(
    request: Request, who: ViewerDep, queue: QueueParam = None, offset: OffsetParam = 0
) -> HTMLResponse:
    """Queues, nodes, charts, decisions and the Swarm."""
    return _page(request, who.token, "all", queue, offset)


@app.get("/visualizer", response_class=HTMLResponse)
def visualizer_page(
    request: Request, who: ViewerDep, queue: QueueParam = None, offset: OffsetParam = 0
) -> HTMLResponse:
    """The nodes of every queue and of the Swarm (served by the proxy at /visualizer)."""
    return _page(request, who.token, "nodes", queue, offset)


@app.get("/api/view")
def api_view(
    who: ViewerDep,
    hours: Annotated[float | None, Query(gt=0, le=168)] = None,
    queue: QueueParam = None,
    offset: OffsetParam = 0,
    limit: Annotated[
        int, Query(ge=1, le=1000, description="nodes per queue in this page")
    ] = 100,  # NODES_PAGE
) -> JSONResponse:
    """The view model as JSON (the document of `airtasks status --json`, nodes paged per queue)."""
    view = current_view(who.token, hours, queue)
    return JSONResponse(
        view.to_json(nodes_offset=offset, nodes_limit=limit), headers={"Cache-Control": "no-store"}
    )


class AirtasksPlugin(AirflowPlugin):
    """The cluster page and its API; see the module docstring."""

    name = "airtasks"
    fastapi_apps = [{"app": app, "url_prefix": PREFIX, "name": "Air-Tasks operations view"}]
    external_views = [
        {
            "name": "Cluster",
            # Relative: the UI resolves it against its base URL (works under a sub-path too).
            "href": "airtasks/",
            "url_route": "cluster",
            "destination": "nav",
            "icon": "airtasks/icon.svg",
        }
    ]


__all__ = ["PREFIX", "AirtasksPlugin", "Viewer", "app", "current_view", "lifespan", "viewer", "warm_up"]
