"""The client's HTTP layer: pagination, error mapping, auth headers, connection failures."""

from __future__ import annotations

import httpx
import pytest

import cratonclient
from cratonclient import exceptions


def hosts(n: int) -> list[dict]:
    return [{"id": i, "name": f"compute-{i}", "labels": []} for i in range(1, n + 1)]


def test_list_follows_next_links_across_three_pages(router, client) -> None:
    router.collection("/v1/hosts", "hosts", hosts(7), default_limit=3)

    names = [h.name for h in client.hosts.list()]

    assert names == [f"compute-{i}" for i in range(1, 8)]
    pages = router.sent("GET", "/v1/hosts")
    assert len(pages) == 3
    assert [p.url.params.get("marker") for p in pages] == [None, "3", "6"]


def test_list_sends_filters_sorting_and_page_size(router, client) -> None:
    router.collection("/v1/hosts", "hosts", hosts(2))

    client.hosts.list(
        label=["compute", "rack-1"],
        vars=["hw.vendor:dell"],
        active=True,
        cell_id=None,
        sort_keys=["name", "id"],
        sort_dir="desc",
        page_size=50,
    )

    params = router.sent("GET", "/v1/hosts")[0].url.params
    assert params.get_list("label") == ["compute", "rack-1"]
    assert params["vars"] == "hw.vendor:dell"
    assert params["active"] == "true"
    assert "cell_id" not in params
    assert params["sort_keys"] == "name,id"
    assert params["sort_dir"] == "desc"
    assert params["limit"] == "50"


def test_list_page_returns_one_page_and_the_next_marker(router, client) -> None:
    router.collection("/v1/regions", "regions", [{"id": i, "name": f"r{i}"} for i in range(1, 6)])

    first = client.regions.list_page(limit=2)
    second = client.regions.list_page(limit=2, marker=first.next_marker)
    last = client.regions.list_page(limit=2, marker=second.next_marker)

    assert [r.id for r in first] == [1, 2] and first.next_marker == "2"
    assert [r.id for r in second] == [3, 4] and second.next_marker == "4"
    assert [r.id for r in last] == [5] and last.next_marker is None
    assert len(router.requests) == 3


def test_next_link_may_be_an_absolute_url(router, client) -> None:
    router.add(
        "GET",
        "/v1/clouds",
        lambda request: httpx.Response(
            200,
            json={"clouds": [{"id": 2}], "links": []}
            if "marker" in request.url.params
            else {
                "clouds": [{"id": 1}],
                "links": [{"rel": "next", "href": f"{router.url}/v1/clouds?marker=1"}],
            },
        ),
    )

    assert [c.id for c in client.clouds.list()] == [1, 2]


def test_resource_gives_attribute_access_and_a_copy_of_its_data(router, client) -> None:
    router.add("GET", "/v1/hosts/3", {"id": 3, "name": "compute-3", "variables": {"a": {"b": 1}}})

    host = client.hosts.get(3)

    assert host.name == "compute-3" and host["id"] == 3
    data = host.to_dict()
    data["variables"]["a"]["b"] = 2
    assert host.variables == {"a": {"b": 1}}
    with pytest.raises(AttributeError):
        _ = host.no_such_field


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, exceptions.BadRequest),
        (401, exceptions.Unauthorized),
        (403, exceptions.Forbidden),
        (404, exceptions.NotFound),
        (409, exceptions.Conflict),
        (413, exceptions.PayloadTooLarge),
        (422, exceptions.UnprocessableEntity),
        (500, exceptions.ServerError),
        (503, exceptions.ServerError),
        (405, exceptions.HTTPError),
    ],
)
def test_error_status_maps_to_its_exception_with_the_servers_message(
    router, client, status: int, cls: type[exceptions.HTTPError]
) -> None:
    router.add("GET", "/v1/tasks/9", router.error(status, f"the server says {status}", "some_code"))

    with pytest.raises(cls) as caught:
        client.tasks.get(9)

    assert type(caught.value) is cls
    assert caught.value.status == status
    assert caught.value.message == f"the server says {status}"
    assert caught.value.code == "some_code"
    assert isinstance(caught.value, cratonclient.ClientError)


def test_a_body_that_is_not_json_is_truncated_in_the_message(router, client) -> None:
    router.add("GET", "/v1/jobs/1", httpx.Response(502, text="<html>" + "x" * 5000))

    with pytest.raises(exceptions.ServerError) as caught:
        client.jobs.get(1)

    assert caught.value.message.startswith("<html>xxx")
    assert len(caught.value.message) < 600


def test_fastapi_validation_detail_becomes_the_message(router, client) -> None:
    detail = [{"loc": ["body", "ip_address"], "msg": "Field required", "type": "missing"}]
    router.add("POST", "/v1/hosts", httpx.Response(422, json={"detail": detail}))

    with pytest.raises(exceptions.UnprocessableEntity, match="ip_address: Field required"):
        client.hosts.create(name="h", region_id=1)


def test_unreachable_server_raises_connection_failed(router) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    with (
        cratonclient.Client(router.url, transport=httpx.MockTransport(refuse)) as client,
        pytest.raises(cratonclient.ConnectionFailed, match="Connection refused"),
    ):
        client.projects.list()


def test_craton_auth_headers(router) -> None:
    router.add("GET", "/healthz", {"status": "ok"})
    project = "5e5c0cc3-7a3a-4b6c-9f1c-3f1a6f0c2d11"

    with router.client(project_id=project, username="alice", token="s3cret") as client:
        client.health()

    headers = router.requests[-1].headers
    assert headers["X-Auth-Project"] == project
    assert headers["X-Auth-User"] == "alice"
    assert headers["X-Auth-Token"] == "s3cret"
    assert "Authorization" not in headers


def test_token_without_user_is_a_bearer_token(router) -> None:
    router.add("GET", "/healthz", {"status": "ok"})

    with router.client(username=None, token="s3cret") as client:
        client.health()

    headers = router.requests[-1].headers
    assert headers["Authorization"] == "Bearer s3cret"
    assert "X-Auth-User" not in headers


def test_url_may_end_with_v1(router) -> None:
    router.add("GET", "/v1/runners", {"runners": [{"id": 1, "alive": True}], "links": []})

    with cratonclient.Client(f"{router.url}/v1/", transport=httpx.MockTransport(router)) as client:
        assert client.runners.list()[0].alive is True


def test_public_surface_is_what_all_names() -> None:
    for name in cratonclient.__all__:
        assert hasattr(cratonclient, name)
    assert "Session" not in cratonclient.__all__
