"""The API's description of itself: the OpenAPI document and the pages that show it.

``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) load their scripts and styles from
``/docs/assets``, files shipped in the ``fastapi-offline`` distribution: the
pages work where the service runs, with no way out to a CDN.

The document declares how a caller authenticates (``SECURITY_SCHEMES``). The
routes take their credentials through FastAPI's security classes (``api.deps``),
which list each header as an alternative of its own; :func:`install_openapi`
states instead what the service accepts: a token, in ``X-Auth-Token`` or as a
bearer token, with ``X-Auth-User`` and ``X-Auth-Project`` beside it when the
caller names them (and a client certificate, when the operator lets one name
its user).

Errors are documented from :data:`ERROR_DESCRIPTIONS` by :func:`error_responses`,
every one with the body ``api.errors`` answers (``schemas.ErrorRead``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from craton_wf.api.schemas import BuildRequest, ErrorRead, TaskCreate

ASSETS_PATH = "/docs/assets"

# The schemes' names in components.securitySchemes; api.deps names its classes so.
TOKEN, USER, PROJECT, BEARER = "X-Auth-Token", "X-Auth-User", "X-Auth-Project", "Bearer"
CERTIFICATE = "ClientCertificate"

# A template trigger's URL takes none of those, but its own secret: a signature
# over the body with its timestamp, or the secret as a bearer (api.routes.triggers).
TRIGGER_SIGNATURE, TRIGGER_TIMESTAMP, TRIGGER_SECRET = (
    "TriggerSignature",
    "TriggerTimestamp",
    "TriggerSecret",
)
TRIGGER_SECURITY: list[dict[str, list[str]]] = [
    {TRIGGER_SIGNATURE: [], TRIGGER_TIMESTAMP: []},
    {TRIGGER_SECRET: []},
]
_TRIGGER_SCHEMES = frozenset({TRIGGER_SIGNATURE, TRIGGER_TIMESTAMP, TRIGGER_SECRET})

# Alternatives, each a set of schemes sent together: the token alone, or with the
# user and project it acts as; the same for a bearer token.
SECURITY: list[dict[str, list[str]]] = [
    {TOKEN: [], USER: [], PROJECT: []},
    {TOKEN: []},
    {BEARER: [], PROJECT: []},
    {BEARER: []},
]

TAGS = [
    {"name": "system", "description": "Health, readiness and the runners."},
    {"name": "projects", "description": "Projects: the tenants (Craton's inventory)."},
    {"name": "clouds", "description": "Clouds of a project's inventory."},
    {"name": "regions", "description": "Regions of a cloud."},
    {"name": "cells", "description": "Cells of a region."},
    {"name": "hosts", "description": "Hosts, their labels and variables."},
    {"name": "inventory", "description": "The Ansible inventory of a project's hosts."},
    {"name": "tasks", "description": "Tasks, their builds, build logs and approvals."},
    {"name": "workflows", "description": "Workflows and their versions."},
    {"name": "jobs", "description": "Jobs, their hosts, runs, events and logs."},
    {
        "name": "templates",
        "description": "Saved launches with typed parameters, and their incoming triggers.",
    },
    {"name": "schedules", "description": "Templates launched on a cron expression."},
    {"name": "users", "description": "Users and their roles."},
    {"name": "tokens", "description": "API tokens."},
    {"name": "audit", "description": "The audit trail."},
    {"name": "secrets", "description": "A project's secrets (values never answered)."},
    {"name": "webhooks", "description": "Webhook endpoints, their deliveries and attempts."},
]

ERROR_DESCRIPTIONS = {
    400: "The request is invalid (a value, a filter, a limit, a task's source).",
    401: "No credentials, or wrong ones.",
    403: "The caller's role does not allow this.",
    404: "No such object in the caller's project.",
    409: "The object's state does not allow this (a name taken, an object in use).",
    413: "The body is over its cap.",
    422: "A field is missing, unknown or of the wrong type.",
    503: "The database is busy: nothing was done; send it again after Retry-After.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a router or route: these error statuses, with their body."""
    return {
        status: {"model": ErrorRead, "description": ERROR_DESCRIPTIONS[status]}
        for status in statuses
    }


# What every route behind authentication may answer besides its own success.
API_ERRORS = error_responses(400, 401, 403, 404, 409, 413, 422, 503)


def follow_responses(
    page: type[BaseModel], items: str, end: str
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route that can follow: a JSON page, or with ``follow=true`` a
    stream (``api.streams``) in the framing the request's ``Accept`` asks for."""
    return {
        200: {
            "model": page,
            "description": (
                "A page. With follow=true, a live stream until the object is finished: "
                "Server-Sent Events when Accept includes text/event-stream (`event: line` "
                f"or `event: event` with `id:` and {items} as `data:`, then `event: end` with "
                f"{{{end}}}; a reconnect's Last-Event-ID header resumes after that id, "
                "exactly), else newline-delimited JSON: "
                f"{items} per line, then {{end: true, {end}}}."
            ),
            "content": {
                "text/event-stream": {"schema": {"type": "string"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    }


def _component_schemas(models: tuple[type[BaseModel], ...]) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


# Bodies the routes read themselves (task uploads: JSON, or multipart with an archive).
_SELF_READ_BODIES = (TaskCreate, BuildRequest)


def upload_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` of a route that reads its body itself: JSON, or a ``spec``
    JSON part with an ``archive`` part (a directory as tar.gz)."""
    assert model in _SELF_READ_BODIES
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {
        "requestBody": {
            "required": model is TaskCreate,
            "content": {
                "application/json": {"schema": ref},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["archive"],
                        "properties": {
                            "spec": {"type": "string", "description": "the JSON fields"},
                            "archive": {"type": "string", "format": "binary"},
                        },
                    }
                },
            },
        }
    }


def _without_null(parameter: dict[str, Any]) -> None:
    """A query parameter is absent or text, never null: ``T | None`` is documented as T.

    (An ``anyOf`` with null would also have a fuzzer send a lone ``label=x`` as a
    value the document forbids, where the server rightly reads a list of one.)
    """
    schema = parameter.get("schema", {})
    options = [option for option in schema.get("anyOf", []) if option != {"type": "null"}]
    if parameter.get("in") != "query" or len(options) != 1 or len(schema["anyOf"]) != 2:
        return
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    if rest.get("default", "") is None:
        del rest["default"]
    parameter["schema"] = {**rest, **options[0]}


def install_openapi(app: FastAPI) -> None:
    """The document FastAPI makes, with the authentication alternatives stated."""
    make = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = make()
        security = SECURITY + _certificate_security(app, document)
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                if "security" in operation:
                    named = {name for option in operation["security"] for name in option}
                    trigger = named <= _TRIGGER_SCHEMES
                    operation["security"] = TRIGGER_SECURITY if trigger else security
                for parameter in operation.get("parameters", []):
                    _without_null(parameter)
        components = document.setdefault("components", {}).setdefault("schemas", {})
        components.update(_component_schemas(_SELF_READ_BODIES))
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _certificate_security(app: FastAPI, document: dict[str, Any]) -> list[dict[str, list[str]]]:
    """With mutual TLS and certificates naming users (``api.tls``), a client
    certificate alone is one more alternative, as OpenAPI 3.1's ``mutualTLS``."""
    if app.state.settings.tls_client_user_field is None:
        return []
    schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes[CERTIFICATE] = {
        "type": "mutualTLS",
        "description": "A client certificate whose subject's "
        f"{app.state.settings.tls_client_user_field} names the user; used when no token is sent.",
    }
    return [{CERTIFICATE: [], PROJECT: []}, {CERTIFICATE: []}]


def _assets_directory() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


# The pages load nothing from elsewhere: ReDoc's attribution logo, an image on a
# CDN it drops when unreachable, is not even asked for.
DOCS_CONTENT_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:"
)


def _page(response: HTMLResponse) -> HTMLResponse:
    response.headers["Content-Security-Policy"] = DOCS_CONTENT_POLICY
    return response


def install_docs(app: FastAPI) -> None:
    """``/docs`` and ``/redoc``, their assets served by the app itself.

    The app is made with ``docs_url=None, redoc_url=None``: FastAPI's own pages
    would load their assets from a CDN.
    """
    app.mount(ASSETS_PATH, StaticFiles(directory=_assets_directory()), name="docs-assets")
    oauth2_redirect = "/docs/oauth2-redirect"

    def asset(request: Request, name: str) -> str:
        return f"{request.scope.get('root_path', '')}{ASSETS_PATH}/{name}"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        return _page(
            get_swagger_ui_html(
                openapi_url=f"{request.scope.get('root_path', '')}{app.openapi_url}",
                title=f"{app.title} API",
                oauth2_redirect_url=oauth2_redirect,
                swagger_js_url=asset(request, "swagger-ui-bundle.js"),
                swagger_css_url=asset(request, "swagger-ui.css"),
                swagger_favicon_url=asset(request, "favicon.png"),
                # no validator badge: Swagger UI would ask validator.swagger.io
                swagger_ui_parameters={"persistAuthorization": True, "validatorUrl": None},
            )
        )

    @app.get(oauth2_redirect, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        return _page(
            get_redoc_html(
                openapi_url=f"{request.scope.get('root_path', '')}{app.openapi_url}",
                title=f"{app.title} API",
                redoc_js_url=asset(request, "redoc.standalone.js"),
                redoc_favicon_url=asset(request, "favicon.png"),
                with_google_fonts=False,
            )
        )
