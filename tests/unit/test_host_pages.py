"""Host pages at fleet scale: the same JSON as a HostRead per host, in a fixed number
of queries whatever the page's size, and one transaction per request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, select

from craton_wf.api.schemas import HostList, HostRead
from craton_wf.db.engine import transaction
from craton_wf.db.models import AuditEvent, Cloud, Host
from craton_wf.services.inventory import VariableResolver


def _inventory(api: Any, root: Any, hosts: int = 24) -> None:
    """Hosts spread over eight cells (and none), some with parents two deep, labels."""
    api.put(f"/v1/projects/{root.project_id}/variables", json={"p": "project", "all": "project"})
    cloud = api.post("/v1/clouds", json={"name": "c1", "variables": {"c": 1, "all": "c"}}).json()
    region = api.post(
        "/v1/regions",
        json={"name": "r1", "cloud_id": cloud["id"], "variables": {"r": "é", "all": "r"}},
    ).json()
    cells = [
        api.post(
            "/v1/cells",
            json={"name": f"cell{i}", "region_id": region["id"], "variables": {"all": i}},
        ).json()
        for i in range(8)
    ]
    made: list[dict[str, Any]] = []
    for i in range(hosts):
        body: dict[str, Any] = {
            "name": f"h{i:02d}",
            "ip_address": f"10.0.0.{i + 1}",
            "region_id": region["id"],
            "labels": [f"l{i % 3}", "all"] if i % 4 else [],
            "variables": {"own": i} if i % 2 else {},
        }
        if i % 5:
            body["cell_id"] = cells[i % 8]["id"]
        if i >= 3 and i % 3 == 0:  # parents, grandparents and so on: 0 <- 3 <- 6 <- 9...
            body["parent_id"] = made[i - 3]["id"]
        answer = api.post("/v1/hosts", json=body)
        assert answer.status_code == 201, answer.text
        made.append(answer.json())


def _as_host_reads(sessions: Any, ids: list[int], resolved: bool) -> list[HostRead]:
    """The page's hosts as the API answered them one HostRead at a time."""
    with transaction(sessions) as session:
        resolver = VariableResolver(session)
        reads = []
        for host_id in ids:
            host = session.get(Host, host_id)
            assert host is not None
            read = HostRead.model_validate(host)
            if resolved:
                read.variables = resolver.host_variables(host)
            reads.append(read)
        return reads


def test_every_page_is_the_json_a_host_read_per_host_made(api, root, sessions) -> None:  # type: ignore[no-untyped-def]
    _inventory(api, root)
    for query in ("limit=7", "limit=7&resolved-values=false", "limit=5&sort_keys=name,id"):
        url, pages = f"/v1/hosts?{query}", 0
        while url:
            answer = api.get(url)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            reads = _as_host_reads(
                sessions, [h["id"] for h in body["hosts"]], "resolved-values=false" not in query
            )
            expected = HostList(hosts=reads, links=body["links"]).model_dump_json()  # type: ignore[call-arg]
            assert answer.content.decode() == expected
            assert answer.headers["content-type"] == "application/json"
            nexts = [link["href"] for link in body["links"] if link["rel"] == "next"]
            url = nexts[0].removeprefix("http://testserver") if nexts else ""
            pages += 1
        assert pages == 24 // int(query.split("&")[0].split("=")[1]) + 1


def test_devices_list_the_same_hosts(api, root, sessions) -> None:  # type: ignore[no-untyped-def]
    _inventory(api, root, hosts=6)
    body = api.get("/v1/devices?limit=4").json()
    reads = _as_host_reads(sessions, [h["id"] for h in body["devices"]["hosts"]], True)
    assert body["devices"]["hosts"] == [read.model_dump(mode="json") for read in reads]
    assert body["devices"]["network-devices"] == []


@contextmanager
def statements(sessions: Any) -> Iterator[list[str]]:
    """Every statement the database is sent meanwhile (BEGIN included on SQLite)."""
    engine = sessions.kw["bind"]
    sent: list[str] = []

    def note(_conn, _cursor, statement, _parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", note)


def _queries(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]


def test_a_page_costs_the_same_queries_whatever_its_size(api, root, sessions) -> None:  # type: ignore[no-untyped-def]
    _inventory(api, root)
    first = api.get("/v1/hosts?limit=1").json()["hosts"][0]["id"]  # and notes the token's use
    counts = {}
    for limit in (3, 10, 22):  # from one to seven generations of parents
        with statements(sessions) as sent:
            answer = api.get(f"/v1/hosts?limit={limit}&marker={first}")
        assert answer.status_code == 200 and len(answer.json()["hosts"]) == limit
        counts[limit] = len(_queries(sent))
    assert len(set(counts.values())) == 1, counts
    # authentication (token, user, project, roles), the marker, the page, its
    # labels, its hosts' ancestors, its scopes
    assert counts[22] <= 9, counts


def test_a_read_is_one_transaction_and_takes_no_write_lock(api, root, sessions) -> None:  # type: ignore[no-untyped-def]
    _inventory(api, root, hosts=3)
    api.get("/v1/hosts")  # the token's use is noted: not again for a while
    with statements(sessions) as sent:
        assert api.get("/v1/hosts?limit=2").status_code == 200
    begins = [s for s in sent if s.upper().startswith("BEGIN")]
    if sessions.kw["bind"].dialect.name == "sqlite":
        assert begins == ["BEGIN"], sent  # deferred: no write lock
    assert not [s for s in sent if s.lstrip().upper().startswith(("INSERT", "UPDATE"))]


def test_a_write_and_its_audit_event_commit_in_one_transaction(api, root, sessions) -> None:  # type: ignore[no-untyped-def]
    api.get("/v1/clouds")  # the token's use is noted: not again for a while
    engine = sessions.kw["bind"]
    transactions: list[str] = []

    def began(_conn) -> None:  # type: ignore[no-untyped-def]
        transactions.append("begin")

    event.listen(engine, "begin", began)
    try:
        created = api.post("/v1/clouds", json={"name": "one"})
    finally:
        event.remove(engine, "begin", began)
    assert created.status_code == 201, created.text
    assert transactions == ["begin"]
    refused = api.post("/v1/clouds", json={"name": "one"})
    assert refused.status_code == 409
    with transaction(sessions) as session:
        assert session.execute(select(Cloud.name)).scalars().all() == ["one"]
        events = session.execute(
            select(AuditEvent.method, AuditEvent.path, AuditEvent.status).where(
                AuditEvent.path == "/v1/clouds"
            )
        ).all()
    assert [tuple(e) for e in events] == [("POST", "/v1/clouds", 201), ("POST", "/v1/clouds", 409)]
