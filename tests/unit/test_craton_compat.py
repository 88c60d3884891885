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
