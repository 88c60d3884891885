"""The console's dependencies: who is signed in, and the CSRF check of a form.

A request's session is the API's (``api.deps.SessionDep``: one transaction,
committed before the answer, a state-changing call audited in it).
:data:`ConsoleUser` reads the session cookie; when there is none or it has
ended, a page answers a redirect to the sign-in page (``ui.app``'s error
page for 401) and a stream or a ``fetch`` answers 401.

:data:`CheckedForm` is what every state-changing console route takes: the
posted form, once its ``csrf_token`` field (or the ``X-CSRF-Token`` header
of the console's own ``fetch`` calls) matches the session's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData

from craton_wf.api.deps import SessionDep
from craton_wf.errors import Forbidden, InvalidInput
from craton_wf.services import console
from craton_wf.services.console import SignedIn

SESSION_COOKIE = "craton_session"
SIGN_IN_COOKIE = "craton_sign_in"  # the sign-in form's own CSRF token (double submit)
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def console_user(request: Request, session: SessionDep) -> SignedIn:
    signed = console.signed_in(session, request.cookies.get(SESSION_COOKIE))
    request.state.principal = signed.principal  # for the audit trail
    return signed


ConsoleUser = Annotated[SignedIn, Depends(console_user)]


async def posted_form(request: Request) -> FormData:
    return await request.form()


PostedForm = Annotated[FormData, Depends(posted_form)]


async def checked_form(request: Request, user: ConsoleUser, form: PostedForm) -> FormData:
    given = form.get(CSRF_FIELD)
    if not isinstance(given, str):
        given = request.headers.get(CSRF_HEADER)
    if not console.csrf_matches(user.csrf_token, given):
        raise Forbidden("the form's CSRF token is missing or wrong: reload the page and try again")
    return form


CheckedForm = Annotated[FormData, Depends(checked_form)]


def form_text(form: FormData, name: str, default: str = "") -> str:
    """A text field of a posted form (a file where text was expected is refused)."""
    value = form.get(name, default)
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be text")
    return value
