"""The console's inventory pages: the tree with its counts, the hosts paged and filtered,
and a host's labels and variables with the scope each comes from."""

from __future__ import annotations

from typing import Any

import pytest

from craton_wf.db.engine import transaction
from craton_wf.db.models import Host, Project
from craton_wf.services import inventory
from tests.factories import make_inventory
from tests.ui.conftest import Browser
from tests.ui.console_people import browser_as, other_project

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def fleet(sessions, root) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        hosts = make_inventory(session, root.project_id, 3, host_vars={"tz": "Europe/Paris"})
        first = hosts[0]
        session.get(Project, root.project_id).variables = {"owner": "ops", "tz": "UTC+0"}
        cloud = inventory.create_cloud(session, root.project_id, {"name": "cloud2"})
        region = inventory.create_region(
            session, root.project_id, {"name": "region2", "cloud_id": cloud.id}
        )
        for index in range(55):
            inventory.create_host(
                session,
                root.project_id,
                {
                    "name": f"edge-{index:02d}",
                    "ip_address": f"10.1.0.{index + 1}",
                    "region_id": region.id,
                    "labels": ["edge"] + (["gpu"] if index % 10 == 0 else []),
                },
            )
        session.add(
            Host(
                project_id=root.project_id,
                cloud_id=first.cloud_id,
                region_id=first.region_id,
                cell_id=first.cell_id,
                parent_id=first.id,
                name="child",
                ip_address="10.0.0.99",
                variables={"slots": [1, 2]},
            )
        )
        return {"host": first.id, "region2": region.id, "cell1": first.cell_id}


def host_rows(html: str) -> int:
    return html.count('<tr data-host="')


def test_a_child_host_shows_its_parent_and_typed_values(fleet, signed_in: Browser) -> None:  # type: ignore[no-untyped-def]
    page = signed_in.get("/ui/inventory/hosts/child").text
    assert f'<a href="/ui/inventory/hosts/{fleet["host"]}">host-000</a>' in page
    tz = page.split('<tr data-key="tz">')[1].split("</tr>")[0]
    assert '<td class="source">parent host host-000</td>' in tz
    assert "[\n  1,\n  2\n]" in page.split('<tr data-key="slots">')[1].split("</tr>")[0]


def test_the_tree_counts_hosts_by_cloud_region_and_cell(fleet, signed_in: Browser) -> None:  # type: ignore[no-untyped-def]
    page = signed_in.get("/ui/inventory").text
    cloud1 = page.split('data-cloud="')[1]
    assert "cloud1" in cloud1 and "4 hosts" in cloud1.split("<ul")[0]
    assert 'cell1</a><span class="count">4 hosts' in page
    assert 'region2</a><span class="count">55 hosts' in page
    assert "55 hosts in no cell" in page
    assert f'href="/ui/inventory/hosts?region={fleet["region2"]}"' in page


def test_hosts_are_paged_and_filtered(fleet, signed_in: Browser) -> None:  # type: ignore[no-untyped-def]
    first = signed_in.get("/ui/inventory/hosts")
    assert host_rows(first.text) == 50
    more = first.text.split('<p class="pager"><a href="')[1].split('"')[0].replace("&amp;", "&")
    assert host_rows(signed_in.get(more).text) == 9
    assert host_rows(signed_in.get(f"/ui/inventory/hosts?region={fleet['region2']}").text) == 50
    assert host_rows(signed_in.get("/ui/inventory/hosts?label=edge+gpu").text) == 6
    assert host_rows(signed_in.get("/ui/inventory/hosts?label=gpu&cell=cell1").text) == 0
    assert host_rows(signed_in.get(f"/ui/inventory/hosts?cell={fleet['cell1']}").text) == 4
    assert host_rows(signed_in.get("/ui/inventory/hosts?name=edge-07").text) == 1
    assert signed_in.get("/ui/inventory/hosts?region=atlantis").status_code == 404


def test_a_host_shows_its_labels_and_where_each_variable_comes_from(
    fleet, signed_in: Browser
) -> None:  # type: ignore[no-untyped-def]
    page = signed_in.get(f"/ui/inventory/hosts/{fleet['host']}").text
    assert "Host host-000" in page and ">compute</a>" in page

    def row(key: str) -> str:
        return page.split(f'<tr data-key="{key}">')[1].split("</tr>")[0]

    assert '<td class="value">Europe/Paris</td>' in row(
        "tz"
    ) and '<td class="source">host</td>' in row("tz")
    hidden = row("tz").split('class="hidden-by"')[1:]
    assert [h.split(">")[1].split(":")[0] for h in hidden] == ["region region1", "project default"]
    assert '<td class="value">ops</td>' in row(
        "owner"
    ) and '<td class="source">project default</td>' in row("owner")


def test_a_hostile_host_name_and_values_render_as_text(
    fleet, signed_in: Browser, sessions, root
) -> None:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:  # a row stored before names were checked
        template = session.get(Host, fleet["host"])
        hostile = Host(
            project_id=root.project_id,
            cloud_id=template.cloud_id,
            region_id=template.region_id,
            name=HOSTILE,
            ip_address="10.9.9.9",
            variables={HOSTILE: HOSTILE},
        )
        session.add(hostile)
        session.flush()
        host_id = hostile.id
    for path in ("/ui/inventory/hosts", f"/ui/inventory/hosts/{host_id}"):
        page = signed_in.get(path).text
        assert HOSTILE not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path


def test_another_projects_host_is_not_found(signed_in: Browser, api, sessions) -> None:  # type: ignore[no-untyped-def]
    project = other_project(api)
    with transaction(sessions) as session:
        theirs = make_inventory(session, project, 1)[0].id
    assert signed_in.get(f"/ui/inventory/hosts/{theirs}").status_code == 404
    assert signed_in.get("/ui/inventory/hosts/host-000").status_code == 404
    assert "cloud1" not in signed_in.get("/ui/inventory").text
    assert host_rows(signed_in.get("/ui/inventory/hosts").text) == 0


def test_a_viewer_reads_the_inventory(fleet, console, api) -> None:  # type: ignore[no-untyped-def]
    viewer, _ = browser_as(console, api, "viewer")
    for path in ("/ui/inventory", "/ui/inventory/hosts", f"/ui/inventory/hosts/{fleet['host']}"):
        assert viewer.get(path).status_code == 200, path
