"""Template triggers: made, listed and deleted by admins under
``/v1/job-templates/{id}/triggers``, and called at ``POST /v1/triggers/{id}``.

The call's URL takes no token: it authenticates by the trigger's secret
(``domain.triggers``), over the exact bytes of the body, which is why the
route reads the raw body (FastAPI reads it before the dependencies, so a
slow sender holds no write slot). It is recorded in the audit trail as the
trigger's user, the trigger's id in the event's detail.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from craton_wf.api.deps import (
    Authorized,
    CurrentUser,
    PageDep,
    SessionDep,
    SettingsDep,
    api_base_url,
    created,
    page_links,
    wake_runner,
)
from craton_wf.api.openapi import API_ERRORS
from craton_wf.api.routes.jobs import job_read
from craton_wf.api.schemas import JobRead
from craton_wf.api.trigger_schemas import (
    TriggerCall,
    TriggerCreate,
    TriggerCreated,
    TriggerList,
    TriggerRead,
)
from craton_wf.db.models import TemplateTrigger
from craton_wf.domain.triggers import read_credential
from craton_wf.errors import InvalidParameter
from craton_wf.services import project_secrets
from craton_wf.services import templates as template_service
from craton_wf.services import triggers as trigger_service
from craton_wf.services.inputs import TemplateLaunch

# The credentials of a trigger's call, declared so that the OpenAPI document
# states them (api.openapi.TRIGGER_SECURITY); domain.triggers judges them.
SIGNATURE = APIKeyHeader(
    name="X-Craton-Signature",
    scheme_name="TriggerSignature",
    auto_error=False,
    description="sha256=<hex HMAC-SHA256 of '<timestamp>.<body>' under the trigger's secret>",
)
TIMESTAMP = APIKeyHeader(
    name="X-Craton-Timestamp",
    scheme_name="TriggerTimestamp",
    auto_error=False,
    description="seconds since the epoch, within 300 s of the server's clock",
)
SECRET = HTTPBearer(
    scheme_name="TriggerSecret",
    auto_error=False,
    description="the trigger's secret itself (when the caller cannot sign)",
)

router = APIRouter(prefix="/v1", tags=["templates"], responses=API_ERRORS)
MANAGED = "/job-templates/{template_id}/triggers"


def _read(request: Request, trigger: TemplateTrigger, names: dict[int, str]) -> TriggerRead:
    return TriggerRead(
        id=trigger.id,
        template_id=trigger.template_id,
        project_id=trigger.project_id,
        url=f"{api_base_url(request)}/v1/triggers/{trigger.id}",
        description=trigger.description,
        created_by=trigger.created_by,
        created_by_name=names.get(trigger.created_by) if trigger.created_by else None,
        created_at=trigger.created_at,
    )


@router.post(MANAGED, status_code=201, dependencies=[Authorized])
def create_trigger(
    template_id: str,
    request: Request,
    response: Response,
    session: SessionDep,
    me: CurrentUser,
    settings: SettingsDep,
    body: TriggerCreate | None = None,
) -> TriggerCreated:
    """A trigger launching the template as the caller; its secret is answered this once."""
    template = template_service.get_template(session, me.project_id, template_id)
    fernet = project_secrets.cipher(settings)
    description = body.description if body else None
    trigger, secret = trigger_service.create_trigger(session, fernet, me, template, description)
    created(response, request, f"job-templates/{template.id}/triggers/{trigger.id}")
    read = _read(request, trigger, {me.user_id: me.user_name})
    return TriggerCreated(**read.model_dump(), secret=secret)


@router.get(MANAGED, response_model=TriggerList, dependencies=[Authorized])
def list_triggers(
    template_id: str, request: Request, session: SessionDep, me: CurrentUser, page: PageDep
) -> dict[str, Any]:
    template = template_service.get_template(session, me.project_id, template_id)
    result = trigger_service.list_triggers(session, template, page)
    names = trigger_service.creators(session, result.items)
    return {
        "triggers": [_read(request, t, names) for t in result.items],
        "links": page_links(request, result),
    }


@router.delete(MANAGED + "/{trigger_id}", status_code=204, dependencies=[Authorized])
def delete_trigger(
    template_id: str, trigger_id: str, session: SessionDep, me: CurrentUser
) -> Response:
    template = template_service.get_template(session, me.project_id, template_id)
    trigger_service.delete_trigger(
        session, trigger_service.get_trigger(session, template, trigger_id)
    )
    return Response(status_code=204)


async def raw_body(request: Request) -> bytes:
    """The body's exact bytes, as signed (already read by FastAPI: no wait here)."""
    return await request.body()


def _launch_of(body: bytes) -> TemplateLaunch:
    """The call's body as a launch; an empty body launches with the defaults."""
    try:
        document = json.loads(body) if body.strip() else {}
        call = TriggerCall.model_validate(document)
        return TemplateLaunch(params=call.params, name=call.name)
    except (ValueError, ValidationError) as exc:
        raise InvalidParameter(
            'the body is JSON {"params": {...}, "name": "..."}: ' + _first_problem(exc)
        ) from exc


def _first_problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error.get("loc", ())) or "body"
        return f"{where}: {error.get('msg', 'invalid')}"
    return str(exc)[:200]


@router.post("/triggers/{trigger_id}", status_code=201)
def call_trigger(
    trigger_id: str,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    body: Annotated[bytes, Depends(raw_body)],
    timestamp: Annotated[str | None, Depends(TIMESTAMP)],
    signature: Annotated[str | None, Depends(SIGNATURE)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(SECRET)],
    _document: Annotated[Any, Body(description='{"params": {...}, "name": "..."}')] = None,
) -> JobRead:
    """Launch the trigger's template: a signed body (preferred) or the secret as bearer."""
    secret = bearer.credentials if bearer is not None else None
    credential = read_credential(timestamp, signature, secret, now=time.time())
    fernet = project_secrets.cipher(settings)
    trigger = trigger_service.authenticate_call(session, fernet, trigger_id, credential, body)
    request.state.audit_detail = trigger_service.audit_detail(trigger)
    me = trigger_service.acting_principal(session, trigger)
    request.state.principal = me  # the audit trail names the trigger's user
    trigger_service.check_may_launch(me)
    launch = _launch_of(body)
    reserved = trigger_service.reserve_launch(
        session, trigger, settings.trigger_rate_per_minute, credential.signature
    )
    template = template_service.get_template(session, trigger.project_id, trigger.template_id)
    job = template_service.launch(
        session, me, template, launch, require_approval=settings.require_approval
    )
    reserved.job_id = job.id
    session.flush()
    request.state.audit_detail = trigger_service.audit_detail(trigger, job.id)
    created(response, request, f"jobs/{job.id}")
    read = job_read(session, job)
    wake_runner(request)
    return read
