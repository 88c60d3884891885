"""Craton's own client against this server: the requests python-cratonclient makes.

Each test sends what the archived client (and its ``craton`` CLI) sends: its
paths under ``/v1``, its headers ``X-Auth-Project``/``X-Auth-User``/
``X-Auth-Token``, its bodies (``labels`` as one string, ``cloud_id`` beside
``region_id``) and its query parameters (``sort_key``, ``detail``, ``vars``
joined by commas, ``marker=None`` dropped), and follows ``links`` the way it
does: the ``next`` href, as given, is the next request's whole URL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete

from craton_wf.db.engine import transaction
from craton_wf.db.models import Cloud, Host, Region


def test_a_deleted_objects_id_is_never_given_again(sessions, root):
    """SQLite hands the largest id again once its row is gone, without AUTOINCREMENT."""
    with transaction(sessions) as session:
        cloud = Cloud(project_id=root.project_id, name="c1", variables={})
        session.add(cloud)
        session.flush()
        region = Region(project_id=root.project_id, cloud_id=cloud.id, name="r1", variables={})
        session.add(region)
        session.flush()
        first = Host(
            project_id=root.project_id,
            cloud_id=cloud.id,
            region_id=region.id,
            name="h1",
            ip_address="10.0.0.1",
            device_type="server",
            variables={},
        )
        session.add(first)
        session.flush()
        first_id = first.id
    with transaction(sessions) as session:
        session.execute(delete(Host).where(Host.id == first_id))
    with transaction(sessions) as session:
        again = Host(
            project_id=root.project_id,
            cloud_id=cloud.id,
            region_id=region.id,
            name="h1",
            ip_address="10.0.0.1",
            device_type="server",
            variables={},
        )
        session.add(again)
        session.flush()
        assert again.id > first_id


# --- the client's session ---------------------------------------------------

BASE = "http://testserver/v1"


def drop_none(params: dict[str, Any]) -> dict[str, Any]:
    """What requests sends of a params dict: the None values are left out."""
    return {k: v for k, v in params.items() if v is not None}


def list_all(api: Any, url: str, key: str, nested: bool = False, **params: Any) -> list[Any]:
    """cratonclient's Session.paginate: GET, then each ``next`` href as it is given."""
    items: list[Any] = []
    query: dict[str, Any] | None = drop_none(params)
    while url:
        answer = api.get(url, params=query)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        page = [i for group in body[key].values() for i in group] if nested else body[key]
        items += page
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), "")
        if url:
            # keystoneauth asks its service catalog for any URL that is not absolute
            assert url.startswith(f"{BASE}/"), url
        query = None
        if not page:
            break
    return items


def inventory(api: Any) -> dict[str, Any]:
    """A cloud, a region, a cell, and hosts (Craton's CLI's own bodies have their tests)."""
    cloud = api.post(f"{BASE}/clouds", json={"name": "cloud1", "note": "n"}).json()
    region = api.post(f"{BASE}/regions", json={"name": "region1", "cloud_id": cloud["id"]}).json()
    cell = api.post(
        f"{BASE}/cells",
        json={"name": "cell1", "region_id": region["id"]},
    )
    assert cell.status_code == 201, cell.text
    hosts = []
    for number in (1, 2, 3):
        created = api.post(
            f"{BASE}/hosts",
            json={
                "name": f"host{number}",
                "ip_address": f"10.0.0.{number}",
                "region_id": region["id"],
                "cell_id": cell.json()["id"],
                "device_type": "server",
                "active": True,
                "labels": ["compute"],
            },
        )
        assert created.status_code == 201, created.text
        hosts.append(created.json())
    return {"cloud": cloud, "region": region, "cell": cell.json(), "hosts": hosts}


# --- links --------------------------------------------------------------------


def test_list_links_are_absolute_urls_the_client_follows(api):
    made = inventory(api)
    hosts = list_all(api, f"{BASE}/hosts", "hosts", limit=1, sort_dir="asc", marker=None)
    assert [h["name"] for h in hosts] == ["host1", "host2", "host3"]
    first = api.get(f"{BASE}/clouds").json()
    assert first["links"] == [{"rel": "self", "href": f"{BASE}/clouds"}]
    assert made["cloud"]["id"] in [c["id"] for c in list_all(api, f"{BASE}/clouds", "clouds")]


def _app_with(settings: Any, sessions: Any, root: Any, **changes: Any) -> Any:
    from fastapi.testclient import TestClient

    from craton_wf.api.app import create_app

    return TestClient(
        create_app(settings.model_copy(update=changes), sessions), headers=root.headers
    )


FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "craton.example.com"}


def test_links_take_the_proxys_scheme_and_host_only_when_it_is_trusted(settings, sessions, root):
    with _app_with(settings, sessions, root, trust_forwarded_headers=True) as api:
        inventory(api)
        answer = api.get(f"{BASE}/hosts", params={"limit": 1}, headers=FORWARDED).json()
        assert answer["links"][1]["href"].startswith("https://craton.example.com/v1/hosts?")
        made = api.post(f"{BASE}/clouds", json={"name": "c9"}, headers=FORWARDED)
        assert (
            made.headers["Location"] == f"https://craton.example.com/v1/clouds/{made.json()['id']}"
        )
        spoofed = api.get(
            f"{BASE}/hosts",
            params={"limit": 1},
            headers={"X-Forwarded-Proto": "javascript", "X-Forwarded-Host": "evil/x@y"},
        ).json()
        assert spoofed["links"][1]["href"].startswith(f"{BASE}/hosts?")
    with _app_with(settings, sessions, root) as api:
        answer = api.get(f"{BASE}/hosts", params={"limit": 1}, headers=FORWARDED).json()
        assert answer["links"][1]["href"].startswith(f"{BASE}/hosts?")


def test_links_take_the_configured_external_url(settings, sessions, root):
    external = "https://inventory.example.org/craton"
    with _app_with(settings, sessions, root, external_url=external + "/") as api:
        inventory(api)
        answer = api.get(f"{BASE}/hosts", params={"limit": 2}, headers=FORWARDED).json()
        assert answer["links"][0]["href"] == f"{external}/v1/hosts?limit=2"
        assert answer["links"][1]["href"] == f"{external}/v1/hosts?limit=2&marker=2"


# --- bodies ---------------------------------------------------------------------


def test_host_create_and_update_take_labels_as_one_string(api):
    made = inventory(api)
    created = api.post(
        f"{BASE}/hosts",
        # what host-create -n h9 -i 10.0.0.9 -r 1 --cloud 1 -t server -l compute sends
        json={
            "name": "h9",
            "ip_address": "10.0.0.9",
            "region_id": made["region"]["id"],
            "cloud_id": made["cloud"]["id"],
            "device_type": "server",
            "active": True,
            "labels": "compute",
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["labels"] == ["compute"]
    host = made["hosts"][0]
    updated = api.put(f"{BASE}/hosts/{host['id']}", json={"labels": "storage", "active": "false"})
    assert updated.status_code == 200, updated.text
    assert updated.json()["labels"] == ["storage"] and updated.json()["active"] is False


def test_cell_create_takes_the_cloud_of_its_region_and_refuses_another(api):
    made = inventory(api)
    cell = api.post(
        f"{BASE}/cells",
        json={"name": "cell2", "region_id": made["region"]["id"], "cloud_id": made["cloud"]["id"]},
    )
    assert cell.status_code == 201, cell.text
    assert cell.json()["cloud_id"] == made["cloud"]["id"]
    other = api.post(f"{BASE}/clouds", json={"name": "cloud2"}).json()
    refused = api.post(
        f"{BASE}/cells",
        json={"name": "cell3", "region_id": made["region"]["id"], "cloud_id": other["id"]},
    )
    assert refused.status_code == 400
    assert "not the cloud of region 'region1'" in refused.json()["message"]
    refused_host = api.post(
        f"{BASE}/hosts",
        json={
            "name": "h9",
            "ip_address": "10.0.0.9",
            "region_id": made["region"]["id"],
            "cloud_id": other["id"],
            "device_type": "server",
        },
    )
    assert refused_host.status_code == 400


def test_cell_update_with_region_id_moves_the_cell_and_its_hosts(api):
    made = inventory(api)
    other_cloud = api.post(f"{BASE}/clouds", json={"name": "cloud2"}).json()
    region2 = api.post(
        f"{BASE}/regions", json={"name": "region2", "cloud_id": other_cloud["id"]}
    ).json()
    cell_id = made["cell"]["id"]
    wrong = api.put(
        f"{BASE}/cells/{cell_id}",
        json={"region_id": region2["id"], "cloud_id": made["cloud"]["id"]},
    )
    assert wrong.status_code == 400
    moved = api.put(
        f"{BASE}/cells/{cell_id}",
        json={"region_id": region2["id"], "cloud_id": other_cloud["id"], "note": "moved"},
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["region_id"], moved.json()["cloud_id"]) == (
        region2["id"],
        other_cloud["id"],
    )
    for host in made["hosts"]:
        shown = api.get(f"{BASE}/hosts/{host['id']}").json()
        assert (shown["region_id"], shown["cloud_id"], shown["cell_id"]) == (
            region2["id"],
            other_cloud["id"],
            cell_id,
        )


def test_region_update_with_cloud_id_moves_the_region_its_cells_and_hosts(api):
    made = inventory(api)
    other = api.post(f"{BASE}/clouds", json={"name": "cloud2"}).json()
    moved = api.put(f"{BASE}/regions/{made['region']['id']}", json={"cloud_id": other["id"]})
    assert moved.status_code == 200, moved.text
    assert moved.json()["cloud_id"] == other["id"]
    assert api.get(f"{BASE}/cells/{made['cell']['id']}").json()["cloud_id"] == other["id"]
    hosts = list_all(api, f"{BASE}/hosts", "hosts", cloud_id=other["id"])
    assert len(hosts) == 3
    missing = api.put(f"{BASE}/regions/{made['region']['id']}", json={"cloud_id": 999})
    assert missing.status_code == 404


def test_host_update_takes_the_cloud_of_its_region_and_refuses_another(api):
    made = inventory(api)
    host = made["hosts"][0]
    same = api.put(
        f"{BASE}/hosts/{host['id']}", json={"cloud_id": made["cloud"]["id"], "name": "renamed"}
    )
    assert same.status_code == 200 and same.json()["name"] == "renamed"
    other = api.post(f"{BASE}/clouds", json={"name": "cloud2"}).json()
    refused = api.put(f"{BASE}/hosts/{host['id']}", json={"cloud_id": other["id"]})
    assert refused.status_code == 400
    region2 = api.post(f"{BASE}/regions", json={"name": "region2", "cloud_id": other["id"]}).json()
    moved = api.put(
        f"{BASE}/hosts/{host['id']}",
        json={"region_id": region2["id"], "cloud_id": other["id"], "cell_id": None},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["cloud_id"] == other["id"]


# --- query parameters -----------------------------------------------------------


def test_sort_key_sorts_as_sort_keys_does(api):
    inventory(api)
    params = {"sort_key": "name", "sort_dir": "desc", "limit": 2}
    names = [h["name"] for h in list_all(api, f"{BASE}/hosts", "hosts", **params)]
    assert names == ["host3", "host2", "host1"]
    api.post(f"{BASE}/cells", json={"name": "a-cell", "region_id": "region1"})
    cells = list_all(api, f"{BASE}/cells", "cells", sort_key="name", sort_dir="asc")
    assert [c["name"] for c in cells] == ["a-cell", "cell1"]
    bad = api.get(f"{BASE}/hosts", params={"sort_key": "nope"})
    assert bad.status_code == 400 and "nope" in bad.json()["message"]


def test_vars_filters_clouds_regions_and_cells(api):
    made = inventory(api)
    api.put(f"{BASE}/clouds/{made['cloud']['id']}/variables", json={"zone": "a", "tier": 1})
    api.post(f"{BASE}/clouds", json={"name": "cloud2", "variables": {"zone": "b"}})
    api.put(f"{BASE}/cells/{made['cell']['id']}/variables", json={"role": "compute"})
    api.post(f"{BASE}/cells", json={"name": "cell2", "region_id": "region1"})
    clouds = list_all(api, f"{BASE}/clouds", "clouds", vars="zone:a,tier:1", detail=True)
    assert [c["name"] for c in clouds] == ["cloud1"]
    regions = list_all(api, f"{BASE}/regions", "regions", vars="zone:a")  # resolved from the cloud
    assert [r["name"] for r in regions] == ["region1"]
    own_only = list_all(
        api, f"{BASE}/regions", "regions", vars="zone:a", **{"resolved-values": "false"}
    )
    assert own_only == []
    cells = list_all(
        api, f"{BASE}/cells", "cells", vars="role:compute", cloud_id=made["cloud"]["id"]
    )
    assert [c["name"] for c in cells] == ["cell1"]
    hosts = list_all(api, f"{BASE}/hosts", "hosts", vars="role:compute,zone:a", label="compute")
    assert len(hosts) == 3


def test_every_list_route_refuses_a_query_parameter_it_does_not_know(api):
    made = inventory(api)
    lists = [
        "/v1/projects",
        "/v1/clouds",
        "/v1/regions",
        "/v1/cells",
        "/v1/hosts",
        "/v1/devices",
        "/v1/tasks",
        "/v1/workflows",
        "/v1/jobs",
        "/v1/runners",
        "/v1/secrets",
        "/v1/audit-events",
    ]

    def query_names(operation: dict[str, Any]) -> set[str]:
        return {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}

    paged = {  # every list: what takes Craton's limit and marker
        path
        for path, operations in api.app.openapi()["paths"].items()
        if {"limit", "marker"} <= query_names(operations.get("get", {}))
    }
    assert set(lists) <= paged
    unpaged = {"/v1/users", "/v1/tokens", "/v1/ansible-inventory"}
    for path in sorted(paged | unpaged):
        url = path.replace("{task_id}", "1")
        if "{" in url:
            continue
        answer = api.get(url, params={"bogus": "1", "limit": 5})
        assert answer.status_code == 400, (path, answer.text)
        assert answer.json()["message"].startswith("unknown query parameter"), path
        assert "bogus" in answer.json()["message"].split(";")[0], path
    # what Craton's client sends on each list
    assert api.get(f"{BASE}/regions", params={"vars": "a:b", "detail": "True"}).status_code == 200
    wrong = api.get(f"{BASE}/regions", params={"region_id": made["region"]["id"]})
    assert wrong.status_code == 400 and "region_id" in wrong.json()["message"]


# --- devices --------------------------------------------------------------------


def test_devices_list_in_cratons_shape(api):
    made = inventory(api)
    parent, child, grandchild = made["hosts"]
    api.put(f"{BASE}/hosts/{child['id']}", json={"parent_id": parent["id"]})
    api.put(f"{BASE}/hosts/{grandchild['id']}", json={"parent_id": child["id"]})
    answer = api.get(f"{BASE}/devices", params={"sort_keys": "name", "sort_dir": "asc"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"devices", "links"}
    assert set(body["devices"]) == {"hosts", "network-devices"}
    assert body["devices"]["network-devices"] == []
    # the client's DeviceManager: nested pages, chained
    devices = list_all(api, f"{BASE}/devices", "devices", nested=True, limit=1)
    assert [d["name"] for d in devices] == ["host1", "host2", "host3"]
    children = list_all(
        api, f"{BASE}/devices", "devices", nested=True, parent_id=parent["id"], descendants="False"
    )
    assert [d["name"] for d in children] == ["host2"]
    below = list_all(
        api, f"{BASE}/devices", "devices", nested=True, parent_id=parent["id"], descendants="True"
    )
    assert sorted(d["name"] for d in below) == ["host2", "host3"]
    filtered = list_all(
        api,
        f"{BASE}/devices",
        "devices",
        nested=True,
        region_id=made["region"]["id"],
        cell_id=made["cell"]["id"],
        cloud_id=made["cloud"]["id"],
        active="true",
        detail=True,
    )
    assert len(filtered) == 3


# --- names in paths ---------------------------------------------------------------


def test_path_ids_take_names(api):
    made = inventory(api)
    assert api.get(f"{BASE}/clouds/cloud1").json()["id"] == made["cloud"]["id"]
    assert api.get(f"{BASE}/regions/region1").json()["id"] == made["region"]["id"]
    assert api.put(f"{BASE}/cells/cell1", json={"note": "x"}).json()["note"] == "x"
    assert api.get(f"{BASE}/hosts/host2").json()["id"] == made["hosts"][1]["id"]
    assert api.get(f"{BASE}/hosts/host2/labels").json() == {"labels": ["compute"]}
    assert api.put(f"{BASE}/regions/region1/variables", json={"k": "v"}).status_code == 200
    assert api.get(f"{BASE}/regions/region1/variables").json()["variables"]["k"] == "v"
    missing = api.get(f"{BASE}/hosts/nohost")
    assert missing.status_code == 404 and missing.json()["message"] == "host 'nohost' not found"
    task = api.post(
        f"{BASE}/tasks",
        json={"name": "patch", "location": "https://example.com/t.git", "command": ["run"]},
    )
    assert task.status_code == 201, task.text
    assert api.get(f"{BASE}/tasks/patch").json()["id"] == task.json()["id"]
    assert api.get(f"{BASE}/tasks/patch/builds").status_code == 200
    workflow = api.post(f"{BASE}/workflows", json={"name": "wf", "steps": [{"task": "patch"}]})
    assert workflow.status_code == 201, workflow.text
    assert api.get(f"{BASE}/workflows/wf").json()["id"] == workflow.json()["id"]
    assert api.get(f"{BASE}/workflows/wf/versions").status_code == 200
    assert api.delete(f"{BASE}/hosts/host3").status_code == 204
