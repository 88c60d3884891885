"""Inventory API with Craton's conventions: status codes, pagination, variables, filters."""

from __future__ import annotations

from typing import Any


def make_region(api: Any, cloud_vars: dict | None = None) -> dict[str, Any]:
    cloud = api.post("/v1/clouds", json={"name": "c1", "variables": cloud_vars or {}}).json()
    return api.post("/v1/regions", json={"name": "r1", "cloud_id": cloud["id"]}).json()


def test_create_show_update_delete_host(api):
    region = make_region(api)
    created = api.post(
        "/v1/hosts",
        json={
            "name": "h1",
            "ip_address": "10.1.1.1",
            "region_id": region["id"],
            "labels": ["b", "a"],
        },
    )
    assert created.status_code == 201
    host = created.json()
    assert created.headers["Location"].endswith(f"/v1/hosts/{host['id']}")
    assert host["labels"] == ["a", "b"] and host["device_type"] == "server" and host["active"]
    updated = api.put(f"/v1/hosts/{host['id']}", json={"ip_address": "10.1.1.2"})
    assert updated.status_code == 200 and updated.json()["ip_address"] == "10.1.1.2"
    assert api.delete(f"/v1/hosts/{host['id']}").status_code == 204
    missing = api.get(f"/v1/hosts/{host['id']}")
    assert missing.status_code == 404
    assert missing.json() == {
        "message": f"host {host['id']} not found",
        "status": 404,
        "code": "not_found",
    }


def test_variables_resolve_host_parent_cell_region_cloud_project(api, root):
    api.put(f"/v1/projects/{root.project_id}/variables", json={"p": "project", "all": "project"})
    region = make_region(api, cloud_vars={"c": "cloud", "all": "cloud"})
    api.put(f"/v1/regions/{region['id']}/variables", json={"r": "region", "all": "region"})
    cell = api.post(
        "/v1/cells",
        json={
            "name": "cell1",
            "region_id": region["id"],
            "variables": {"all": "cell", "x": "cell"},
        },
    ).json()
    parent = api.post(
        "/v1/hosts",
        json={
            "name": "chassis",
            "ip_address": "10.0.0.1",
            "region_id": region["id"],
            "cell_id": cell["id"],
            "variables": {"x": "parent", "y": "parent"},
        },
    ).json()
    child = api.post(
        "/v1/hosts",
        json={
            "name": "blade",
            "ip_address": "10.0.0.2",
            "region_id": "r1",
            "cell_id": "cell1",
            "parent_id": parent["id"],
            "variables": {"y": "child"},
        },
    ).json()
    resolved = api.get(f"/v1/hosts/{child['id']}").json()["variables"]
    assert resolved == {
        "y": "child",
        "x": "parent",
        "all": "cell",
        "r": "region",
        "c": "cloud",
        "p": "project",
    }
    own = api.get(f"/v1/hosts/{child['id']}?resolved-values=false").json()["variables"]
    assert own == {"y": "child"}
    assert api.get(f"/v1/hosts/{child['id']}/variables").json()["variables"] == resolved
    deleted = api.request("DELETE", f"/v1/hosts/{child['id']}/variables", json=["y"])
    assert deleted.status_code == 204
    assert api.get(f"/v1/hosts/{child['id']}/variables").json()["variables"]["y"] == "parent"


def test_pagination_follows_next_links(api):
    region = make_region(api)
    for index in range(7):
        api.post(
            "/v1/hosts",
            json={"name": f"n{index}", "ip_address": f"10.0.0.{index}", "region_id": region["id"]},
        )
    seen, url = [], "/v1/hosts?limit=3&sort_keys=name&sort_dir=desc"
    while url:
        page = api.get(url).json()
        seen += [h["name"] for h in page["hosts"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    assert seen == [f"n{i}" for i in reversed(range(7))]


def test_host_filters(api):
    region = make_region(api)
    other = api.post("/v1/regions", json={"name": "r2", "cloud_id": region["cloud_id"]}).json()
    api.post(
        "/v1/hosts",
        json={
            "name": "a",
            "ip_address": "1.1.1.1",
            "region_id": region["id"],
            "labels": ["compute"],
            "variables": {"os": {"ver": 22}},
        },
    )
    api.post(
        "/v1/hosts",
        json={
            "name": "b",
            "ip_address": "1.1.1.2",
            "region_id": other["id"],
            "labels": ["compute", "gpu"],
            "device_type": "switch",
            "variables": {"os": {"ver": 20}},
        },
    )

    def names(query: str) -> list[str]:
        response = api.get(f"/v1/hosts?{query}")
        assert response.status_code == 200, response.text
        return [h["name"] for h in response.json()["hosts"]]

    assert names("region_id=" + str(other["id"])) == ["b"]
    assert names("label=compute&label=gpu") == ["b"]
    assert names("device_type=switch") == ["b"]
    assert names("vars=os.ver:22") == ["a"]
    assert names("label=compute") == ["a", "b"]


def test_errors_are_json_with_status(api):
    assert api.post("/v1/hosts", json={"name": "x"}).json()["status"] == 422
    bad = api.post("/v1/hosts", json={"name": "x", "ip_address": "1.1.1.1", "region_id": 999})
    assert bad.status_code == 404 and "region" in bad.json()["message"]
    dup = make_region(api)
    again = api.post("/v1/regions", json={"name": "r1", "cloud_id": dup["cloud_id"]})
    assert again.status_code == 409 and "already exists" in again.json()["message"]
    assert api.get("/v1/hosts?sort_keys=nope").status_code == 400
    assert api.get("/v1/hosts?limit=100000").status_code == 400
    assert (
        api.post(
            "/v1/hosts", json={"name": "bad name!", "ip_address": "1.1.1.1", "region_id": dup["id"]}
        ).status_code
        == 400
    )
    too_long = api.post(
        "/v1/hosts", json={"name": "x", "ip_address": "1" * 65, "region_id": dup["id"]}
    )
    assert too_long.status_code == 422 and "ip_address" in too_long.json()["message"]
    unknown_field = api.post("/v1/clouds", json={"name": "z", "project_id": "other"})
    assert unknown_field.status_code == 422 and "project_id" in unknown_field.json()["message"]


def test_authentication_required_and_projects_isolated(api, settings, sessions, root):
    from fastapi.testclient import TestClient

    from craton_wf.api.app import create_app

    anonymous = TestClient(create_app(settings, sessions))
    assert anonymous.get("/v1/hosts").status_code == 401
    assert anonymous.get("/v1/hosts").json()["code"] == "authentication_failed"
    bearer = TestClient(
        create_app(settings, sessions), headers={"Authorization": f"Bearer {root.token}"}
    )
    assert bearer.get("/v1/hosts").status_code == 200

    region = make_region(api)
    host = api.post(
        "/v1/hosts", json={"name": "mine", "ip_address": "1.1.1.1", "region_id": region["id"]}
    ).json()
    other = api.post("/v1/projects", json={"name": "other"}).json()
    as_other = {**root.headers, "X-Auth-Project": other["id"]}
    assert api.get(f"/v1/hosts/{host['id']}", headers=as_other).status_code == 404
    assert api.get("/v1/hosts", headers=as_other).json()["hosts"] == []
    assert api.get(f"/v1/regions/{region['id']}", headers=as_other).status_code == 404


def test_ansible_inventory(api):
    region = make_region(api)
    api.post(
        "/v1/hosts",
        json={
            "name": "a",
            "ip_address": "1.1.1.1",
            "region_id": region["id"],
            "labels": ["web"],
            "variables": {"port": 80},
        },
    )
    inventory = api.get("/v1/ansible-inventory").json()
    assert inventory["_meta"]["hostvars"]["a"] == {"port": 80, "ansible_host": "1.1.1.1"}
    assert inventory["web"]["hosts"] == ["a"] and inventory["r1"]["hosts"] == ["a"]
    assert inventory["all"]["hosts"] == ["a"]


HOSTILE_ADDRESSES = ("999.1.1.1; rm -rf /", "web-3.example", "10.0.0.1 ", "fe80::1%$(id)", "")


def test_host_addresses_must_be_ip_addresses(api):
    region = make_region(api)
    for address in HOSTILE_ADDRESSES:
        body = {"name": "h", "ip_address": address, "region_id": region["id"]}
        refused = api.post("/v1/hosts", json=body)
        assert refused.status_code == 422, (address, refused.text)
        assert refused.json()["message"] == (
            f"ip_address: '{address}' is not an IPv4 or IPv6 address"
        )
    assert api.get("/v1/hosts").json()["hosts"] == []
    made = [
        api.post("/v1/hosts", json={"name": f"h{i}", "ip_address": a, "region_id": region["id"]})
        for i, a in enumerate(("10.0.0.1", "2001:db8::1", "fe80::1%eth0"))
    ]
    assert [m.status_code for m in made] == [201, 201, 201]
    host = made[0].json()["id"]
    for address in HOSTILE_ADDRESSES:
        refused = api.put(f"/v1/hosts/{host}", json={"ip_address": address})
        assert refused.status_code == 422 and f"'{address}'" in refused.json()["message"]
    assert api.get(f"/v1/hosts/{host}").json()["ip_address"] == "10.0.0.1"


def test_ansible_inventory_never_serves_an_invalid_stored_address(api, sessions):
    from sqlalchemy import update

    from craton_wf.db.engine import transaction
    from craton_wf.db.models import Host

    region = make_region(api)
    for name, address in (("good", "10.0.0.5"), ("bad", "10.0.0.6")):
        body = {"name": name, "ip_address": address, "region_id": region["id"]}
        api.post("/v1/hosts", json={**body, "variables": {"ansible_host": "from-vars"}})
    with transaction(sessions) as session:  # a row stored before addresses were checked
        session.execute(
            update(Host).where(Host.name == "bad").values(ip_address="999.1.1.1; rm -rf /")
        )

    inventory = api.get("/v1/ansible-inventory").json()

    assert inventory["_meta"]["hostvars"]["good"]["ansible_host"] == "10.0.0.5"
    assert "ansible_host" not in inventory["_meta"]["hostvars"]["bad"]
    assert "rm -rf" not in str(inventory)
    assert inventory["all"]["hosts"] == ["good", "bad"]
