"""The console's audit trail: the project's events for its admins, paged and filtered."""

from __future__ import annotations

from craton_wf.db.engine import transaction
from craton_wf.services import audit
from craton_wf.services.auth import Principal
from tests.ui.conftest import Browser
from tests.ui.console_people import browser_as, other_project


def _record(sessions, project_id: str, user: str, count: int, path: str) -> None:  # type: ignore[no-untyped-def]
    someone = Principal(user_id=None, user_name=user, project_id=project_id, roles=frozenset())
    with transaction(sessions) as session:
        for _ in range(count):
            audit.record(
                session,
                principal=someone,
                claimed_user=None,
                method="POST",
                path=path,
                status=201,
                client="127.0.0.1",
                location=None,
            )


def rows(html: str) -> int:
    return html.count('<tr data-event="')


def test_admins_page_and_filter_the_projects_events(
    signed_in: Browser, sessions, root, api
) -> None:  # type: ignore[no-untyped-def]
    _record(sessions, root.project_id, "alice", 40, "/v1/hosts")
    _record(sessions, root.project_id, "<b>bob</b>", 15, "/v1/jobs/7/cancel")
    first = signed_in.get("/ui/audit")
    assert rows(first.text) == 50
    assert "&lt;b&gt;bob&lt;/b&gt;" in first.text and "<b>bob</b>" not in first.text
    more = first.text.split('<p class="pager"><a href="')[1].split('"')[0].replace("&amp;", "&")
    assert rows(signed_in.get(more).text) >= 5
    cancels = signed_in.get("/ui/audit?action=job.cancel").text
    assert rows(cancels) == 15 and "job 7" in cancels
    assert rows(signed_in.get("/ui/audit?user=alice&object_type=host").text) == 40
    assert rows(signed_in.get("/ui/audit?object_type=job&object_id=8").text) == 0
    assert rows(signed_in.get("/ui/audit?outcome=failure&user=alice").text) == 0
    assert signed_in.get("/ui/audit?outcome=maybe").status_code == 400


def test_another_projects_events_stay_there(signed_in: Browser, console, api, sessions) -> None:  # type: ignore[no-untyped-def]
    project = other_project(api)
    _record(sessions, project, "mallory", 3, "/v1/hosts")
    admin, _ = browser_as(console, api, "admin")
    page = admin.get("/ui/audit")
    assert page.status_code == 200 and "mallory" not in page.text


def test_only_admins_read_the_trail(console, api) -> None:  # type: ignore[no-untyped-def]
    operator, _ = browser_as(console, api, "operator")
    refused = operator.get("/ui/audit")
    assert refused.status_code == 403 and "needs the admin role" in refused.text
