"""The inventory pages: clouds → regions → cells as a tree, the hosts paged with
filters, and a host with its labels and where each of its variables comes from.

Each page reads what the API's route of the same objects reads, under its
rule (``GET /v1/clouds``…, ``GET /v1/hosts``, ``GET /v1/hosts/{host_id}``).
The tree counts hosts without loading them (``services.inventory_tree``);
the hosts list is the API's page of hosts (``inventory.host_page``: a fixed
number of queries per page), so a fleet of any size pages the same way. A
host's variables are shown resolved, as a task receives them, each with the
scope it comes from and the values of less specific scopes it hides
(``VariableResolver.variable_sources``).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from craton_wf.api.deps import SessionDep
from craton_wf.services import inventory, policy
from craton_wf.services.inventory_tree import inventory_tree
from craton_wf.services.pagination import PageRequest
from craton_wf.ui import PREFIX
from craton_wf.ui.deps import ConsoleUser
from craton_wf.ui.launch_form import words
from craton_wf.ui.render import page

router = APIRouter(prefix=PREFIX)
PAGE_SIZE = 50
Filter = Annotated[str, Query(max_length=255)]


@router.get("/inventory", response_class=HTMLResponse)
def inventory_page(request: Request, session: SessionDep, user: ConsoleUser) -> HTMLResponse:
    for route in ("/v1/clouds", "/v1/regions", "/v1/cells"):
        policy.authorize(user.principal, "GET", route)
    tree = inventory_tree(session, user.principal.project_id)
    return page(request, "inventory.html", user, tree=tree)


@router.get("/inventory/hosts", response_class=HTMLResponse)
def host_list(
    request: Request,
    session: SessionDep,
    user: ConsoleUser,
    name: Filter = "",
    label: Filter = "",
    cloud: Filter = "",
    region: Filter = "",
    cell: Filter = "",
    marker: Annotated[str, Query(max_length=20)] = "",
) -> HTMLResponse:
    me = user.principal
    policy.authorize(me, "GET", "/v1/hosts")
    typed = {"name": name, "label": label, "cloud": cloud, "region": region, "cell": cell}
    filters: dict[str, Any] = {key: value.strip() or None for key, value in typed.items()}
    filters["label"] = words(label) or None
    result = inventory.host_page(
        session,
        me.project_id,
        PageRequest(limit=PAGE_SIZE, marker=marker or None, sort_keys=("name",)),
        filters,
        resolved=False,
    )
    tree = inventory_tree(session, me.project_id)
    regions = {r.id: r for c in tree for r in c.regions}
    cells = {cell.id: cell for r in regions.values() for cell in r.cells}
    kept = {key: value for key, value in typed.items() if value}
    return page(
        request,
        "inventory_hosts.html",
        user,
        hosts=result.items,
        filters=typed,
        clouds={c.id: c for c in tree},
        regions=regions,
        cells=cells,
        next_page=(
            "/ui/inventory/hosts?" + urlencode({**kept, "marker": result.next_marker})
            if result.next_marker is not None
            else None
        ),
    )


@router.get("/inventory/hosts/{host_id}", response_class=HTMLResponse)
def host_page(
    host_id: str, request: Request, session: SessionDep, user: ConsoleUser
) -> HTMLResponse:
    me = user.principal
    policy.authorize(me, "GET", "/v1/hosts/{host_id}")
    host = inventory.get_host(session, me.project_id, host_id)
    policy.check_host_in_scope(session, me, host.id)
    resolver = inventory.VariableResolver(session)
    parent = inventory.get_host(session, me.project_id, host.parent_id) if host.parent_id else None
    return page(
        request,
        "host.html",
        user,
        host=host,
        parent=parent,
        names=resolver.names(host),
        sources=resolver.variable_sources(host),
    )
