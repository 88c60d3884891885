"""A Craton user's ``craton`` command lines run unchanged: its CLI's option spellings.

python-cratonclient's CLI spelled options ``-n``, ``-r``, ``-c``, ``-i``/``--ip_address``,
``-t``/``--type``, ``-l``/``--labels``, ``-a true|false``, ``--detail``, ``--format default``;
this CLI accepts them beside its own, and sends what its own spellings send.
"""

from __future__ import annotations

import json

HOST = {
    "id": 5,
    "name": "h1",
    "ip_address": "10.0.0.1",
    "device_type": "server",
    "region_id": 1,
    "cell_id": 2,
    "cloud_id": 1,
    "labels": ["compute"],
    "active": True,
}


def body(router, method: str, path: str) -> dict:
    return json.loads(router.sent(method, path)[-1].content)


def test_host_create_with_cratons_short_options(router, cli) -> None:
    router.add("POST", "/v1/hosts", HOST)

    result = cli(
        "host-create", "-n", "h1", "-i", "10.0.0.1", "-r", "1", "--cloud", "1", "-c", "2",
        "-t", "server", "-a", "false", "-l", "compute", "--format", "default",
    )  # fmt: skip

    assert result.code == 0, result.err
    assert body(router, "POST", "/v1/hosts") == {
        "name": "h1",
        "ip_address": "10.0.0.1",
        "region_id": 1,
        "cloud_id": 1,
        "cell_id": 2,
        "device_type": "server",
        "active": False,
        "labels": ["compute"],
    }
    assert "h1" in result.out


def test_host_create_with_cratons_long_options(router, cli) -> None:
    router.add("POST", "/v1/hosts", HOST)

    result = cli(
        "host-create", "--name", "h1", "--ip_address", "10.0.0.1", "--region", "1",
        "--type", "server", "--labels", "compute",
    )  # fmt: skip

    assert result.code == 0, result.err
    sent = body(router, "POST", "/v1/hosts")
    assert (sent["ip_address"], sent["device_type"], sent["labels"]) == (
        "10.0.0.1",
        "server",
        ["compute"],
    )


def test_host_update_moves_with_cratons_options(router, cli) -> None:
    router.add("PUT", "/v1/hosts/5", HOST)

    result = cli("host-update", "5", "-n", "h2", "-r", "3", "--cloud", "4", "-a", "true")

    assert result.code == 0, result.err
    assert body(router, "PUT", "/v1/hosts/5") == {
        "name": "h2",
        "region_id": 3,
        "cloud_id": 4,
        "active": True,
    }


def test_host_list_with_cratons_options(router, cli) -> None:
    router.collection("/v1/hosts", "hosts", [HOST])

    result = cli(
        "host-list", "-r", "1", "-c", "2", "--ip", "10.0.0.1", "--detail", "--format", "default"
    )

    assert result.code == 0, result.err
    params = router.sent("GET", "/v1/hosts")[-1].url.params
    assert (params["region_id"], params["cell_id"], params["ip_address"]) == ("1", "2", "10.0.0.1")
    assert "detail" not in params


def test_cell_create_and_update_with_cratons_options(router, cli) -> None:
    cell = {"id": 3, "name": "c1", "region_id": 1, "cloud_id": 1}
    router.add("POST", "/v1/cells", cell)
    router.add("PUT", "/v1/cells/3", cell)

    created = cli("cell-create", "-n", "c1", "-r", "1", "--cloud", "1")
    moved = cli("cell-update", "3", "-r", "2", "--cloud", "1")

    assert created.code == 0 and moved.code == 0, created.err + moved.err
    assert body(router, "POST", "/v1/cells") == {"name": "c1", "region_id": 1, "cloud_id": 1}
    assert body(router, "PUT", "/v1/cells/3") == {"region_id": 2, "cloud_id": 1}


def test_region_update_with_a_cloud_and_lists_with_vars(router, cli) -> None:
    router.add("PUT", "/v1/regions/2", {"id": 2, "name": "r", "cloud_id": 4})
    router.collection("/v1/cells", "cells", [])

    moved = cli("region-update", "2", "--cloud", "4")
    listed = cli("cell-list", "-r", "1", "--vars", "a:1", "--detail")

    assert moved.code == 0 and listed.code == 0, moved.err + listed.err
    assert body(router, "PUT", "/v1/regions/2") == {"cloud_id": 4}
    params = router.sent("GET", "/v1/cells")[-1].url.params
    assert (params["region_id"], params.get_list("vars")) == ("1", ["a:1"])
