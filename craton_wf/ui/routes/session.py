"""Signing in to the console with an API token, and out again.

The sign-in form is protected by a double-submit token: ``GET`` sets a random
value in a strict cookie and in the form, ``POST`` needs both to match, so
another site cannot sign a browser in to an account of its choosing. The
session cookie is ``HttpOnly``, ``SameSite=Strict``, scoped to ``/ui``, and
``Secure`` when the console is served over https. Signing out ends the
session in the database, not only in the browser.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from craton_wf.api.deps import SessionDep, SettingsDep
from craton_wf.errors import AuthenticationFailed
from craton_wf.services import console
from craton_wf.ui import PREFIX
from craton_wf.ui.deps import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    CheckedForm,
    ConsoleUser,
    PostedForm,
    form_text,
)
from craton_wf.ui.render import page

router = APIRouter(prefix=PREFIX)
HOME = "/ui/jobs"


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console page of this site, never elsewhere."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return HOME


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_form(request: Request, next: str = "") -> HTMLResponse:  # noqa: A002 - the query's name
    nonce = secrets.token_urlsafe(24)
    answer = page(request, "sign_in.html", None, next=safe_next(next), sign_in_nonce=nonce)
    answer.set_cookie(
        SIGN_IN_COOKIE,
        nonce,
        max_age=3600,
        path="/ui/sign-in",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return answer


@router.post("/sign-in", status_code=303)
def sign_in(
    request: Request, session: SessionDep, settings: SettingsDep, form: PostedForm
) -> RedirectResponse:
    nonce = request.cookies.get(SIGN_IN_COOKIE)
    given = form.get("sign_in_nonce")
    if not nonce or not isinstance(given, str) or not console.csrf_matches(nonce, given):
        raise AuthenticationFailed("the sign-in form has expired: load it again")
    token = form_text(form, "token")
    project = form_text(form, "project").strip() or None
    if not token.strip():
        raise AuthenticationFailed("enter an API token")
    lifetime = timedelta(hours=settings.console_session_hours)
    key, signed = console.sign_in(session, token, project, lifetime)
    request.state.principal = signed.principal  # for the audit trail
    answer = RedirectResponse(safe_next(form_text(form, "next")), status_code=303)
    answer.set_cookie(
        SESSION_COOKIE,
        key,
        max_age=int(lifetime.total_seconds()),
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    answer.delete_cookie(SIGN_IN_COOKIE, path="/ui/sign-in")
    return answer


@router.post("/sign-out", status_code=303)
def sign_out(
    request: Request, session: SessionDep, user: ConsoleUser, _form: CheckedForm
) -> RedirectResponse:
    console.sign_out(session, user.session_id)
    answer = RedirectResponse("/ui/sign-in", status_code=303)
    answer.delete_cookie(SESSION_COOKIE, path="/ui", secure=_secure(request), httponly=True)
    return answer
