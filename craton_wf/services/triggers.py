"""Incoming triggers: a URL per job template that launches it when called with its secret.

An admin makes a trigger on a template; its secret (32 random bytes, URL-safe)
is answered once, then kept encrypted with the service's key like a
webhook's (:mod:`craton_wf.services.project_secrets`' cipher) and never shown
again. A call proves it knows the secret by signing its body or by sending
the secret (:mod:`craton_wf.domain.triggers`). An unknown trigger and a wrong
secret answer the same 401, so the URL tells nothing to who does not hold
the secret.

A launch acts as the user who made the trigger, with the roles that user
holds in the project at the time of the call: a user since deleted,
deactivated, or no longer allowed to launch the template makes the trigger
refuse (403), and which tasks it may run is decided as for any launch
(``services.templates.launch``). Each launch is recorded
(:class:`~craton_wf.db.models.TriggerLaunch`): the rate limit counts a
trigger's launches of the last minute in the database, so it holds across
API processes, and a signature is accepted once (a signed call replayed
inside the timestamp window is refused, 409). The trigger's row is locked
while it is counted (``FOR UPDATE`` on PostgreSQL; SQLite writes one at a
time), so concurrent calls cannot both take the last place.
"""

from __future__ import annotations

import math
import secrets
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from craton_wf.db.models import (
    JobTemplate,
    RoleAssignment,
    TemplateTrigger,
    TriggerLaunch,
    User,
    utcnow,
)
from craton_wf.domain.triggers import TriggerCredential, proves_secret
from craton_wf.errors import AuthenticationFailed, Conflict, Forbidden, NotFound, TooManyRequests
from craton_wf.services import policy
from craton_wf.services.auth import Principal
from craton_wf.services.pagination import Page, PageRequest, paginate

TRIGGER_SORT_KEYS = ("id", "created_at")
SECRET_BYTES = 32
RATE_WINDOW = timedelta(minutes=1)
LAUNCH_ROUTE = "/v1/job-templates/{template_id}/launch"
REFUSED = "unknown trigger or wrong secret"


def create_trigger(
    session: Session,
    fernet: Fernet,
    me: Principal,
    template: JobTemplate,
    description: str | None = None,
) -> tuple[TemplateTrigger, str]:
    """A new trigger on ``template`` made by ``me``, and its secret (answered this once)."""
    secret = secrets.token_urlsafe(SECRET_BYTES)
    trigger = TemplateTrigger(
        project_id=template.project_id,
        template_id=template.id,
        secret_ciphertext=fernet.encrypt(secret.encode()).decode(),
        description=description,
        created_by=me.user_id,
    )
    session.add(trigger)
    session.flush()
    return trigger, secret


def list_triggers(
    session: Session, template: JobTemplate, page: PageRequest
) -> Page[TemplateTrigger]:
    stmt = select(TemplateTrigger).where(TemplateTrigger.template_id == template.id)
    return paginate(session, stmt, TemplateTrigger, page, TRIGGER_SORT_KEYS)


def get_trigger(session: Session, template: JobTemplate, trigger_id: str) -> TemplateTrigger:
    trigger = session.get(TemplateTrigger, trigger_id) if len(trigger_id) <= 36 else None
    if trigger is None or trigger.template_id != template.id:
        raise NotFound(f"trigger {trigger_id} of job template {template.name} not found")
    return trigger


def delete_trigger(session: Session, trigger: TemplateTrigger) -> None:
    session.delete(trigger)
    session.flush()


def creators(session: Session, triggers: list[TemplateTrigger]) -> dict[int, str]:
    """The names of the users who made ``triggers``, by id."""
    ids = {t.created_by for t in triggers if t.created_by is not None}
    if not ids:
        return {}
    rows = session.execute(select(User.id, User.name).where(User.id.in_(ids)))
    return {row.id: row.name for row in rows}


# --- a call to a trigger's URL -------------------------------------------------------


def authenticate_call(
    session: Session, fernet: Fernet, trigger_id: str, credential: TriggerCredential, body: bytes
) -> TemplateTrigger:
    """The trigger the call names, when its credential proves the trigger's secret."""
    trigger = session.get(TemplateTrigger, trigger_id) if len(trigger_id) <= 36 else None
    if trigger is None:
        # The work a known trigger's check costs, so that timing does not tell either.
        proves_secret(secrets.token_urlsafe(SECRET_BYTES), credential, body)
        raise AuthenticationFailed(REFUSED)
    secret = fernet.decrypt(trigger.secret_ciphertext.encode()).decode()
    if not proves_secret(secret, credential, body):
        raise AuthenticationFailed(REFUSED)
    return trigger


def acting_principal(session: Session, trigger: TemplateTrigger) -> Principal:
    """The trigger's maker as a caller of the template's launch, with today's roles."""
    user = session.get(User, trigger.created_by) if trigger.created_by is not None else None
    if user is None or not user.active:
        raise Forbidden("the user who made this trigger is gone or inactive: make a new trigger")
    roles = frozenset(
        session.execute(
            select(RoleAssignment.role).where(
                RoleAssignment.user_id == user.id,
                RoleAssignment.project_id == trigger.project_id,
            )
        ).scalars()
    )
    return Principal(user.id, user.name, trigger.project_id, is_root=user.is_root, roles=roles)


def check_may_launch(me: Principal) -> None:
    """Forbidden unless ``me`` may still launch job templates in the trigger's project."""
    try:
        policy.authorize(me, "POST", LAUNCH_ROUTE)
    except Forbidden as exc:
        raise Forbidden(
            f"the trigger launches as {me.user_name}, who may no longer launch job templates "
            f"here ({exc.message})"
        ) from exc


def reserve_launch(
    session: Session, trigger: TemplateTrigger, per_minute: int, signature: str | None
) -> TriggerLaunch:
    """A place among the trigger's launches of the last minute, and the signature's only use.

    TooManyRequests (with the seconds until a place frees) when the minute is full;
    Conflict when this signature already launched a job."""
    locked = select(TemplateTrigger).where(TemplateTrigger.id == trigger.id).with_for_update()
    session.execute(locked).scalar_one()
    now = utcnow()
    if signature is not None:
        used = session.execute(
            select(TriggerLaunch.job_id).where(
                TriggerLaunch.trigger_id == trigger.id, TriggerLaunch.signature == signature
            )
        ).first()
        if used is not None:
            raise Conflict(f"this signed call already launched job {used.job_id}: sign a new one")
    count, oldest = session.execute(
        select(func.count(), func.min(TriggerLaunch.launched_at)).where(
            TriggerLaunch.trigger_id == trigger.id, TriggerLaunch.launched_at > now - RATE_WINDOW
        )
    ).one()
    if count >= per_minute:
        raise TooManyRequests(
            f"trigger {trigger.id} launched {count} jobs in the last minute, "
            f"its limit (CRATON_WF_TRIGGER_RATE_PER_MINUTE={per_minute})",
            retry_after=_seconds_until_free(oldest, now),
        )
    launch = TriggerLaunch(trigger_id=trigger.id, signature=signature, launched_at=now)
    session.add(launch)
    return launch


def _seconds_until_free(oldest: datetime | None, now: datetime) -> int:
    if oldest is None:
        return 1
    if oldest.tzinfo is None:  # SQLite's aggregate comes back without the column's type
        oldest = oldest.replace(tzinfo=now.tzinfo)
    return max(1, math.ceil((oldest + RATE_WINDOW - now).total_seconds()))


def audit_detail(trigger: TemplateTrigger, job_id: int | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"trigger_id": trigger.id, "template_id": trigger.template_id}
    if job_id is not None:
        detail["job_id"] = job_id
    return detail
