"""Projects, clouds, regions, cells, hosts, variables, labels, Ansible inventory."""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import BaseModel

from craton_wf.api.deps import Authorized, CurrentUser, Db, PageDep, RootUser, created, page_links
from craton_wf.api.openapi import API_ERRORS
from craton_wf.api.schemas import (
    AnsibleInventory,
    CellCreate,
    CellRead,
    CellUpdate,
    CloudCreate,
    CloudRead,
    CloudUpdate,
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
from craton_wf.services import inventory, policy
from craton_wf.services.common import get_owned

router = APIRouter(prefix="/v1", dependencies=[Authorized], responses=API_ERRORS)

ResolvedValues = Annotated[bool, Query(alias="resolved-values")]


# --- projects -------------------------------------------------------------------


@router.get("/projects", tags=["projects"], response_model=ProjectList)
def list_projects(
    request: Request, db: Db, me: CurrentUser, page: PageDep, name: str | None = None
) -> dict[str, Any]:
    with db.begin() as session:
        result = inventory.list_projects(session, me.user_id, me.is_root, page, name)
        return {
            "projects": [ProjectRead.model_validate(p) for p in result.items],
            "links": page_links(request, result),
        }


@router.post("/projects", status_code=201, tags=["projects"])
def create_project(
    body: ProjectCreate, request: Request, response: Response, db: Db, me: RootUser
) -> ProjectRead:
    with db.begin() as session:
        project = inventory.create_project(session, body.name, body.variables)
        created(response, request, f"projects/{project.id}")
        return ProjectRead.model_validate(project)


def _visible_project(session: Any, me: Any, project_id: str) -> Project:
    return inventory.visible_project(session, me.user_id, me.is_root, me.project_id, project_id)


@router.get("/projects/{project_id}", tags=["projects"])
def show_project(project_id: str, db: Db, me: CurrentUser) -> ProjectRead:
    with db.begin() as session:
        return ProjectRead.model_validate(_visible_project(session, me, project_id))


@router.put("/projects/{project_id}", tags=["projects"])
def update_project(project_id: str, body: ProjectUpdate, db: Db, me: CurrentUser) -> ProjectRead:
    with db.begin() as session:
        project = inventory.update_project(
            session, me, project_id, body.model_dump(exclude_unset=True)
        )
        return ProjectRead.model_validate(project)


@router.delete("/projects/{project_id}", status_code=204, tags=["projects"])
def delete_project(project_id: str, db: Db, me: RootUser) -> Response:
    with db.begin() as session:
        session.delete(inventory.get_project(session, project_id))
    return Response(status_code=204)


# --- clouds, regions, cells: one set of routes each ----------------------------


def _crud(
    plural: str,
    model: type,
    create_schema: type[BaseModel],
    update_schema: type[BaseModel],
    read_schema: type[BaseModel],
    create_fn: Callable[..., Any],
    filters: tuple[str, ...],
) -> None:
    singular = plural[:-1]

    def list_objects(request: Request, db: Db, me: CurrentUser, page: PageDep) -> dict[str, Any]:
        wanted = {key: request.query_params.get(key) for key in filters}
        with db.begin() as session:
            result = inventory.list_scoped(session, model, me.project_id, page, wanted)
            return {
                plural: [read_schema.model_validate(o) for o in result.items],
                "links": page_links(request, result),
            }

    def create_object(
        body: create_schema,  # type: ignore[valid-type]
        request: Request,
        response: Response,
        db: Db,
        me: CurrentUser,
    ) -> Any:
        with db.begin() as session:
            obj = create_fn(session, me.project_id, body.model_dump(exclude_unset=True))  # type: ignore[attr-defined]
            created(response, request, f"{plural}/{obj.id}")
            return read_schema.model_validate(obj)

    def show_object(object_id: int, db: Db, me: CurrentUser) -> Any:
        with db.begin() as session:
            return read_schema.model_validate(
                get_owned(session, model, me.project_id, object_id, singular)
            )

    def update_object(object_id: int, body: update_schema, db: Db, me: CurrentUser) -> Any:  # type: ignore[valid-type]
        with db.begin() as session:
            obj: Any = get_owned(session, model, me.project_id, object_id, singular)
            inventory.update_simple(session, obj, body.model_dump(exclude_unset=True), singular)  # type: ignore[attr-defined]
            return read_schema.model_validate(obj)

    def delete_object(object_id: int, db: Db, me: CurrentUser) -> Response:
        with db.begin() as session:
            inventory.delete_checked(
                session, get_owned(session, model, me.project_id, object_id, singular), singular
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


_crud("clouds", Cloud, CloudCreate, CloudUpdate, CloudRead, inventory.create_cloud, ("name",))
_crud(
    "regions",
    inventory.Region,
    RegionCreate,
    RegionUpdate,
    RegionRead,
    inventory.create_region,
    ("name", "cloud_id"),
)
_crud(
    "cells",
    Cell,
    CellCreate,
    CellUpdate,
    CellRead,
    inventory.create_cell,
    ("name", "cloud_id", "region_id"),
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
    db: Db,
    me: CurrentUser,
    page: PageDep,
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
) -> dict[str, Any]:
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
    with db.begin() as session:
        if me.job_id is not None:  # a task's token: only its job's hosts
            filters["ids"] = sorted(policy.job_host_ids(session, me.job_id))
        result = inventory.list_hosts(session, me.project_id, page, filters)
        resolver = inventory.VariableResolver(session)
        return {
            "hosts": [_host_read(resolver, h, resolved) for h in result.items],
            "links": page_links(request, result),
        }


@router.post("/hosts", status_code=201, tags=["hosts"])
def create_host(
    body: HostCreate, request: Request, response: Response, db: Db, me: CurrentUser
) -> HostRead:
    with db.begin() as session:
        host = inventory.create_host(session, me.project_id, body.model_dump(exclude_unset=True))
        created(response, request, f"hosts/{host.id}")
        return _host_read(inventory.VariableResolver(session), host, False)


@router.get("/hosts/{host_id}", tags=["hosts"])
def show_host(host_id: int, db: Db, me: CurrentUser, resolved: ResolvedValues = True) -> HostRead:
    with db.begin() as session:
        host = get_owned(session, Host, me.project_id, host_id, "host")
        policy.check_host_in_scope(session, me, host.id)
        return _host_read(inventory.VariableResolver(session), host, resolved)


@router.put("/hosts/{host_id}", tags=["hosts"])
def update_host(host_id: int, body: HostUpdate, db: Db, me: CurrentUser) -> HostRead:
    with db.begin() as session:
        host = get_owned(session, Host, me.project_id, host_id, "host")
        inventory.update_host(session, me.project_id, host, body.model_dump(exclude_unset=True))
        return _host_read(inventory.VariableResolver(session), host, False)


@router.delete("/hosts/{host_id}", status_code=204, tags=["hosts"])
def delete_host(host_id: int, db: Db, me: CurrentUser) -> Response:
    with db.begin() as session:
        inventory.delete_checked(
            session, get_owned(session, Host, me.project_id, host_id, "host"), "host"
        )
    return Response(status_code=204)


@router.get("/hosts/{host_id}/labels", tags=["hosts"])
def get_labels(host_id: int, db: Db, me: CurrentUser) -> LabelsBody:
    with db.begin() as session:
        return LabelsBody(labels=get_owned(session, Host, me.project_id, host_id, "host").labels)


@router.put("/hosts/{host_id}/labels", tags=["hosts"])
def set_labels(host_id: int, body: LabelsBody, db: Db, me: CurrentUser) -> LabelsBody:
    with db.begin() as session:
        host = get_owned(session, Host, me.project_id, host_id, "host")
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
    id_type = str if kind == "projects" else int

    def get_variables(
        object_id: id_type,  # type: ignore[valid-type]
        db: Db,
        me: CurrentUser,  # type: ignore[valid-type]
        resolved: ResolvedValues = True,
    ) -> dict[str, Any]:
        with db.begin() as session:
            obj = _variable_owner(session, me, kind, object_id)
            values = (
                inventory.VariableResolver(session).resolved(obj) if resolved else obj.variables
            )
            return {"variables": values}

    def put_variables(
        object_id: id_type,  # type: ignore[valid-type]
        db: Db,
        me: CurrentUser,  # type: ignore[valid-type]
        body: Annotated[dict[str, Any], Body()],
    ) -> dict[str, Any]:
        with db.begin() as session:
            obj = _variable_owner(session, me, kind, object_id)
            return {"variables": inventory.merge_variables(obj, body)}

    def delete_variables(
        object_id: id_type,  # type: ignore[valid-type]
        db: Db,
        me: CurrentUser,  # type: ignore[valid-type]
        body: Annotated[list[str], Body()],
    ) -> Response:
        with db.begin() as session:
            obj = _variable_owner(session, me, kind, object_id)
            inventory.delete_variables(obj, body)
        return Response(status_code=204)

    path = f"/{kind}/{{object_id}}/variables"
    router.add_api_route(
        path,
        get_variables,
        methods=["GET"],
        name=f"get_{kind}_variables",
        response_model=VariablesRead,
        tags=[kind],
    )
    router.add_api_route(
        path,
        put_variables,
        methods=["PUT"],
        name=f"put_{kind}_variables",
        response_model=VariablesRead,
        tags=[kind],
    )
    router.add_api_route(
        path,
        delete_variables,
        methods=["DELETE"],
        status_code=204,
        name=f"delete_{kind}_variables",
        tags=[kind],
    )


for _kind in inventory.VARIABLE_OWNERS:
    _variables_routes(_kind)


@router.get("/ansible-inventory", tags=["inventory"], response_model=AnsibleInventory)
def ansible_inventory(
    db: Db,
    me: CurrentUser,
    region: str | None = None,
    cell: str | None = None,
    label: Annotated[list[str] | None, Query()] = None,
) -> dict[str, Any]:
    with db.begin() as session:
        return inventory.ansible_inventory(
            session, me.project_id, {"region": region, "cell": cell, "label": label}
        )
