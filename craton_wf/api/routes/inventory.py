"""Projects, clouds, regions, cells, hosts, variables, labels, Ansible inventory."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel

from craton_wf.api.deps import (
    Authorized,
    CurrentUser,
    KnownQuery,
    PageDep,
    RootUser,
    SessionDep,
    created,
    json_answer,
    page_links,
)
from craton_wf.api.openapi import API_ERRORS
from craton_wf.api.schemas import (
    AnsibleInventory,
    CellCreate,
    CellRead,
    CellUpdate,
    CloudCreate,
    CloudRead,
    CloudUpdate,
    DeviceList,
    HostCreate,
    HostList,
    HostRead,
    HostUpdate,
    LabelsBody,
    ProjectCreate,
    ProjectList,
    ProjectRead,
    ProjectUpdate,
    RegionCreate,
    RegionRead,
    RegionUpdate,
    VariablesRead,
    list_answer,
)
from craton_wf.db.models import Cell, Cloud, Host, Project
from craton_wf.services import fleet, inventory, policy
from craton_wf.services.lookups import find_by_ref

router = APIRouter(prefix="/v1", dependencies=[Authorized], responses=API_ERRORS)

ResolvedValues = Annotated[bool, Query(alias="resolved-values")]
VarsQuery = Annotated[
    list[str] | None,
    Query(description="path:value (a dotted path into the variables); several joined by commas"),
]


async def craton_detail(
    detail: Annotated[bool | None, Query(description="Craton's clients' flag; ignored")] = None,
    details: Annotated[bool | None, Query(description="Craton's server's flag; ignored")] = None,
) -> None:
    """Craton's "detailed" lists: every list here answers with the variables already."""


CratonDetail = Annotated[None, Depends(craton_detail)]


async def cloud_filters(name: str | None = None, vars: VarsQuery = None) -> inventory.ScopeFilters:
    return inventory.ScopeFilters(name=name, vars=tuple(vars or ()))


async def region_filters(
    name: str | None = None,
    cloud_id: str | None = None,
    vars: VarsQuery = None,
    resolved: ResolvedValues = True,
) -> inventory.ScopeFilters:
    return inventory.ScopeFilters(
        name=name, cloud=cloud_id, vars=tuple(vars or ()), resolved=resolved
    )


async def cell_filters(
    name: str | None = None,
    cloud_id: str | None = None,
    region_id: str | None = None,
    vars: VarsQuery = None,
    resolved: ResolvedValues = True,
) -> inventory.ScopeFilters:
    return inventory.ScopeFilters(
        name=name, cloud=cloud_id, region=region_id, vars=tuple(vars or ()), resolved=resolved
    )


# --- projects -------------------------------------------------------------------


@router.get("/projects", tags=["projects"], response_model=ProjectList)
def list_projects(
    request: Request,
    session: SessionDep,
    me: CurrentUser,
    page: PageDep,
    _detail: CratonDetail,
    name: str | None = None,
) -> dict[str, Any]:
    result = inventory.list_projects(session, me.user_id, me.is_root, page, name)
    return {
        "projects": [ProjectRead.model_validate(p) for p in result.items],
        "links": page_links(request, result),
    }


@router.post("/projects", status_code=201, tags=["projects"])
def create_project(
    body: ProjectCreate, request: Request, response: Response, session: SessionDep, me: RootUser
) -> ProjectRead:
    project = inventory.create_project(session, body.name, body.variables)
    created(response, request, f"projects/{project.id}")
    return ProjectRead.model_validate(project)


def _visible_project(session: Any, me: Any, project_id: str) -> Project:
    return inventory.visible_project(session, me.user_id, me.is_root, me.project_id, project_id)


@router.get("/projects/{project_id}", tags=["projects"])
def show_project(project_id: str, session: SessionDep, me: CurrentUser) -> ProjectRead:
    return ProjectRead.model_validate(_visible_project(session, me, project_id))


@router.put("/projects/{project_id}", tags=["projects"])
def update_project(
    project_id: str, body: ProjectUpdate, session: SessionDep, me: CurrentUser
) -> ProjectRead:
    project = inventory.update_project(session, me, project_id, body.model_dump(exclude_unset=True))
    return ProjectRead.model_validate(project)


@router.delete("/projects/{project_id}", status_code=204, tags=["projects"])
def delete_project(project_id: str, session: SessionDep, me: RootUser) -> Response:
    project = inventory.get_project(session, project_id)
    fleet.retire_project_counts(session, project.id)  # /metrics' counters never go down
    session.delete(project)
    return Response(status_code=204)


# --- clouds, regions, cells: one set of routes each ----------------------------


def _crud(
    plural: str,
    model: type,
    create_schema: type[BaseModel],
    update_schema: type[BaseModel],
    read_schema: type[BaseModel],
    create_fn: Callable[..., Any],
    filters: Callable[..., Awaitable[inventory.ScopeFilters]],
) -> None:
    singular = plural[:-1]

    def list_objects(
        request: Request,
        session: SessionDep,
        me: CurrentUser,
        page: PageDep,
        wanted: Annotated[inventory.ScopeFilters, Depends(filters)],
        _detail: CratonDetail,
    ) -> dict[str, Any]:
        result = inventory.list_scoped(session, model, me.project_id, page, wanted)
        return {
            plural: [read_schema.model_validate(o) for o in result.items],
            "links": page_links(request, result),
        }

    def create_object(
        body: create_schema,  # type: ignore[valid-type]
        request: Request,
        response: Response,
        session: SessionDep,
        me: CurrentUser,
    ) -> Any:
        obj = create_fn(session, me.project_id, body.model_dump(exclude_unset=True))  # type: ignore[attr-defined]
        created(response, request, f"{plural}/{obj.id}")
        return read_schema.model_validate(obj)

    def show_object(object_id: str, session: SessionDep, me: CurrentUser) -> Any:
        return read_schema.model_validate(
            find_by_ref(session, model, me.project_id, object_id, singular)
        )

    def update_object(
        object_id: str,
        body: update_schema,  # type: ignore[valid-type]
        session: SessionDep,
        me: CurrentUser,
    ) -> Any:
        obj: Any = find_by_ref(session, model, me.project_id, object_id, singular)
        changes = body.model_dump(exclude_unset=True)  # type: ignore[attr-defined]
        inventory.update_scope(session, me.project_id, obj, changes, singular)
        return read_schema.model_validate(obj)

    def delete_object(object_id: str, session: SessionDep, me: CurrentUser) -> Response:
        inventory.delete_checked(
            session, find_by_ref(session, model, me.project_id, object_id, singular), singular
        )
        return Response(status_code=204)

    router.add_api_route(
        f"/{plural}",
        list_objects,
        methods=["GET"],
        name=f"list_{plural}",
        response_model=list_answer(f"{read_schema.__name__[:-4]}List", plural, read_schema),
        tags=[plural],
    )
    router.add_api_route(
        f"/{plural}",
        create_object,
        methods=["POST"],
        status_code=201,
        response_model=read_schema,
        name=f"create_{singular}",
        tags=[plural],
    )
    router.add_api_route(
        f"/{plural}/{{object_id}}",
        show_object,
        methods=["GET"],
        response_model=read_schema,
        name=f"show_{singular}",
        tags=[plural],
    )
    router.add_api_route(
        f"/{plural}/{{object_id}}",
        update_object,
        methods=["PUT"],
        response_model=read_schema,
        name=f"update_{singular}",
        tags=[plural],
    )
    router.add_api_route(
        f"/{plural}/{{object_id}}",
        delete_object,
        methods=["DELETE"],
        status_code=204,
        name=f"delete_{singular}",
        tags=[plural],
    )


_crud("clouds", Cloud, CloudCreate, CloudUpdate, CloudRead, inventory.create_cloud, cloud_filters)
_crud(
    "regions",
    inventory.Region,
    RegionCreate,
    RegionUpdate,
    RegionRead,
    inventory.create_region,
    region_filters,
)
_crud(
    "cells",
    Cell,
    CellCreate,
    CellUpdate,
    CellRead,
    inventory.create_cell,
    cell_filters,
)


# --- hosts ----------------------------------------------------------------------


def _host_read(resolver: inventory.VariableResolver, host: Host, resolved: bool) -> HostRead:
    read = HostRead.model_validate(host)
    if resolved:
        read.variables = resolver.host_variables(host)
    return read


@router.get("/hosts", tags=["hosts"], response_model=HostList)
def list_hosts(
    request: Request,
    session: SessionDep,
    me: CurrentUser,
    page: PageDep,
    _detail: CratonDetail,
    resolved: ResolvedValues = True,
    name: str | None = None,
    region_id: str | None = None,
    region: str | None = None,
    cell_id: str | None = None,
    cell: str | None = None,
    cloud_id: str | None = None,
    device_type: str | None = None,
    ip_address: str | None = None,
    active: bool | None = None,
    label: Annotated[list[str] | None, Query()] = None,
    vars: Annotated[list[str] | None, Query()] = None,
) -> Response:
    """Hosts, paged: built from plain rows and serialized in one call (``json_answer``),
    in a fixed number of queries whatever the page's size (``inventory.host_page``)."""
    filters: dict[str, Any] = {
        "name": name,
        "region": region_id or region,
        "cell": cell_id or cell,
        "cloud": cloud_id,
        "device_type": device_type,
        "ip_address": ip_address,
        "active": active,
        "label": label,
        "vars": vars,
    }
    if me.job_id is not None:  # a task's token: only its job's hosts
        filters["ids"] = sorted(policy.job_host_ids(session, me.job_id))
    result = inventory.host_page(session, me.project_id, page, filters, resolved)
    return json_answer({"hosts": result.items, "links": page_links(request, result)})


@router.get("/devices", tags=["hosts"], response_model=DeviceList)
def list_devices(
    request: Request,
    session: SessionDep,
    me: CurrentUser,
    page: PageDep,
    _detail: CratonDetail,
    resolved: ResolvedValues = True,
    region_id: str | None = None,
    cell_id: str | None = None,
    cloud_id: str | None = None,
    parent_id: str | None = None,
    descendants: bool = False,
    active: bool | None = None,
) -> Response:
    """Craton's devices: hosts, and network devices (none are kept here)."""
    filters: dict[str, Any] = {
        "region": region_id,
        "cell": cell_id,
        "cloud": cloud_id,
        "parent": parent_id,
        "descendants": descendants,
        "active": active,
    }
    result = inventory.host_page(session, me.project_id, page, filters, resolved)
    return json_answer(
        {
            "devices": {"hosts": result.items, "network-devices": []},
            "links": page_links(request, result),
        }
    )


@router.post("/hosts", status_code=201, tags=["hosts"])
def create_host(
    body: HostCreate, request: Request, response: Response, session: SessionDep, me: CurrentUser
) -> HostRead:
    host = inventory.create_host(session, me.project_id, body.model_dump(exclude_unset=True))
    created(response, request, f"hosts/{host.id}")
    return _host_read(inventory.VariableResolver(session), host, False)


@router.get("/hosts/{host_id}", tags=["hosts"])
def show_host(
    host_id: str, session: SessionDep, me: CurrentUser, resolved: ResolvedValues = True
) -> HostRead:
    host = find_by_ref(session, Host, me.project_id, host_id, "host")
    policy.check_host_in_scope(session, me, host.id)
    return _host_read(inventory.VariableResolver(session), host, resolved)


@router.put("/hosts/{host_id}", tags=["hosts"])
def update_host(host_id: str, body: HostUpdate, session: SessionDep, me: CurrentUser) -> HostRead:
    host = find_by_ref(session, Host, me.project_id, host_id, "host")
    inventory.update_host(session, me.project_id, host, body.model_dump(exclude_unset=True))
    return _host_read(inventory.VariableResolver(session), host, False)


@router.delete("/hosts/{host_id}", status_code=204, tags=["hosts"])
def delete_host(host_id: str, session: SessionDep, me: CurrentUser) -> Response:
    inventory.delete_checked(
        session, find_by_ref(session, Host, me.project_id, host_id, "host"), "host"
    )
    return Response(status_code=204)


@router.get("/hosts/{host_id}/labels", tags=["hosts"])
def get_labels(host_id: str, session: SessionDep, me: CurrentUser) -> LabelsBody:
    return LabelsBody(labels=find_by_ref(session, Host, me.project_id, host_id, "host").labels)


@router.put("/hosts/{host_id}/labels", tags=["hosts"])
def set_labels(host_id: str, body: LabelsBody, session: SessionDep, me: CurrentUser) -> LabelsBody:
    host = find_by_ref(session, Host, me.project_id, host_id, "host")
    inventory.set_labels(host, body.labels)
    session.flush()
    return LabelsBody(labels=host.labels)


# --- variables of every inventory object ---------------------------------------


def _variable_owner(session: Any, me: Any, kind: str, object_id: Any) -> Any:
    obj = inventory.get_variable_owner(session, me.project_id, kind, object_id)
    if kind == "hosts":
        policy.check_host_in_scope(session, me, obj.id)
    return obj


def _variables_routes(kind: str) -> None:
    def get_variables(
        object_id: str,  # an id, or a name (projects: the id)
        session: SessionDep,
        me: CurrentUser,  # type: ignore[valid-type]
        resolved: ResolvedValues = True,
    ) -> dict[str, Any]:
        obj = _variable_owner(session, me, kind, object_id)
        values = inventory.VariableResolver(session).resolved(obj) if resolved else obj.variables
        return {"variables": values}

    def put_variables(
        object_id: str,  # an id, or a name (projects: the id)
        session: SessionDep,
        me: CurrentUser,  # type: ignore[valid-type]
        body: Annotated[dict[str, Any], Body()],
    ) -> dict[str, Any]:
        obj = _variable_owner(session, me, kind, object_id)
        return {"variables": inventory.merge_variables(obj, body)}

    def delete_variables(
        object_id: str,  # an id, or a name (projects: the id)
        session: SessionDep,
        me: CurrentUser,  # type: ignore[valid-type]
        body: Annotated[list[str], Body()],
    ) -> Response:
        obj = _variable_owner(session, me, kind, object_id)
        inventory.delete_variables(obj, body)
        return Response(status_code=204)

    path = f"/{kind}/{{object_id}}/variables"
    for method, endpoint, answer in (
        ("GET", get_variables, {"response_model": VariablesRead}),
        ("PUT", put_variables, {"response_model": VariablesRead}),
        ("DELETE", delete_variables, {"status_code": 204}),
    ):
        router.add_api_route(
            path,
            endpoint,
            methods=[method],
            name=f"{method.lower()}_{kind}_variables",
            tags=[kind],
            **answer,  # type: ignore[arg-type]
        )


for _kind in inventory.VARIABLE_OWNERS:
    _variables_routes(_kind)


@router.get("/ansible-inventory", tags=["inventory"], response_model=AnsibleInventory)
def ansible_inventory(
    session: SessionDep,
    me: CurrentUser,
    _query: KnownQuery,
    region: str | None = None,
    cell: str | None = None,
    region_id: Annotated[str | None, Query(description="Craton's name of region")] = None,
    cell_id: Annotated[str | None, Query(description="Craton's name of cell")] = None,
    label: Annotated[list[str] | None, Query()] = None,
) -> dict[str, Any]:
    filters = {"region": region_id or region, "cell": cell_id or cell, "label": label}
    return inventory.ansible_inventory(session, me.project_id, filters)
