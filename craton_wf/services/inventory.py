"""Inventory: projects, clouds, regions, cells, hosts, their variables and labels.

Hosts resolve their variables host → parent host(s) → cell → region → cloud →
project (Craton's rule, first found wins). :class:`VariableResolver` caches the
scopes it has loaded, so resolving 2,000 hosts costs a handful of queries.

A page of hosts (:func:`host_page`, ``GET /v1/hosts`` at fleet scale) is
built from plain rows, not ORM objects, in a fixed number of queries whatever
its size: the marker and the page (``services.pagination``), the page's
labels, the scopes its variables resolve through (every cell, region, cloud
and the project the page names, in one query), and, when some of its hosts
have parents, every ancestor host (one recursive query). Each of these takes
the page's ids as one expanding parameter of a statement built once. Its
hosts are plain dicts, ready to serialize, with the fields of
``api.schemas.HostRead``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    Select,
    String,
    bindparam,
    func,
    literal,
    select,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from craton_wf.db.models import Cell, Cloud, Host, HostLabel, Project, Region, RoleAssignment
from craton_wf.domain.addresses import is_ip_address
from craton_wf.domain.variables import (
    matches_vars,
    parse_vars_filters,
    resolve_variables,
    resolve_with_sources,
)
from craton_wf.errors import Conflict, Forbidden, InvalidInput, NotFound
from craton_wf.services import policy
from craton_wf.services.auth import Principal
from craton_wf.services.lookups import check_name, find_by_ref, flush_unique
from craton_wf.services.pagination import (
    Page,
    PageRequest,
    paginate,
    paginate_rows,
    scoped,
)

VARIABLE_OWNERS: dict[str, type] = {
    "projects": Project,
    "clouds": Cloud,
    "regions": Region,
    "cells": Cell,
    "hosts": Host,
}
SORT_KEYS = ("id", "name", "created_at")


@dataclass(frozen=True)
class ScopeFilters:
    """Filters of a list of clouds, regions or cells; ``cloud``, ``region`` by id or name."""

    name: str | None = None
    cloud: str | None = None
    region: str | None = None
    vars: tuple[str, ...] = ()  # ``path:value``, several joined by commas
    resolved: bool = True  # match ``vars`` against resolved variables, as Craton does


HOST_SORT_KEYS = ("id", "name", "ip_address", "device_type", "region_id", "cell_id", "created_at")


# --- projects -----------------------------------------------------------------


def create_project(session: Session, name: str, variables: dict[str, Any] | None) -> Project:
    project = Project(name=check_name(name, "project"), variables=variables or {})
    session.add(project)
    flush_unique(session, "project", name)
    return project


def get_project(session: Session, project_id: str) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"project {project_id} not found")
    return project


def visible_project(
    session: Session, user_id: int, is_root: bool, acting_project_id: str, project_id: str
) -> Project:
    """A project the caller may see: root sees all, others their own (404 otherwise)."""
    member = is_root or project_id == acting_project_id
    if not member and session.get(RoleAssignment, (user_id, project_id)) is None:
        raise NotFound(f"project {project_id} not found")
    return get_project(session, project_id)


def update_project(
    session: Session, me: Principal, project_id: str, data: dict[str, Any]
) -> Project:
    """Change a project: root, or an admin of *that* project acting in it.

    The role that counts is the one held in the project changed, not in the one
    the caller acts in; and acting in it is required too, so that a token scoped
    to one project never changes another.
    """
    policy.require_role(policy.in_project(session, me, project_id), "admin", "changing a project")
    if not me.is_root and project_id != me.project_id:
        raise Forbidden(f"to change project {project_id}, act in it (X-Auth-Project)")
    project = get_project(session, project_id)
    update_simple(session, project, data, "project")
    return project


def list_projects(
    session: Session, user_id: int, is_root: bool, page: PageRequest, name: str | None
) -> Page[Project]:
    stmt = select(Project)
    if not is_root:
        stmt = stmt.where(
            Project.id.in_(
                select(RoleAssignment.project_id).where(RoleAssignment.user_id == user_id)
            )
        )
    if name:
        stmt = stmt.where(Project.name == name)
    return paginate(session, stmt, Project, page, SORT_KEYS)


# --- clouds, regions, cells ---------------------------------------------------


def create_cloud(session: Session, project_id: str, data: dict[str, Any]) -> Cloud:
    cloud = Cloud(
        project_id=project_id,
        name=check_name(data["name"], "cloud"),
        note=data.get("note"),
        variables=data.get("variables") or {},
    )
    session.add(cloud)
    flush_unique(session, "cloud", cloud.name)
    return cloud


def create_region(session: Session, project_id: str, data: dict[str, Any]) -> Region:
    cloud = _resolve_cloud(session, project_id, data.get("cloud_id"))
    region = Region(
        project_id=project_id,
        cloud_id=cloud.id,
        name=check_name(data["name"], "region"),
        note=data.get("note"),
        variables=data.get("variables") or {},
    )
    session.add(region)
    flush_unique(session, "region", region.name)
    return region


def create_cell(session: Session, project_id: str, data: dict[str, Any]) -> Cell:
    if data.get("region_id") is None:
        raise InvalidInput("region_id is required")
    region = find_by_ref(session, Region, project_id, data["region_id"], "region")
    _check_cloud(session, project_id, region, data.get("cloud_id"))
    cell = Cell(
        project_id=project_id,
        cloud_id=region.cloud_id,
        region_id=region.id,
        name=check_name(data["name"], "cell"),
        note=data.get("note"),
        variables=data.get("variables") or {},
    )
    session.add(cell)
    flush_unique(session, "cell", cell.name)
    return cell


def _resolve_cloud(session: Session, project_id: str, ref: Any) -> Cloud:
    if ref is not None:
        return find_by_ref(session, Cloud, project_id, ref, "cloud")
    clouds = list(session.execute(scoped(Cloud, project_id).limit(2)).scalars())
    if len(clouds) != 1:
        raise InvalidInput("cloud_id is required (the project does not have exactly one cloud)")
    return clouds[0]


def _check_cloud(session: Session, project_id: str, region: Region, ref: Any) -> None:
    """A cloud given beside a region (Craton's client sends both) must be the region's."""
    if ref is None:
        return
    cloud = find_by_ref(session, Cloud, project_id, ref, "cloud")
    if cloud.id != region.cloud_id:
        raise InvalidInput(
            f"cloud {cloud.name!r} is not the cloud of region {region.name!r}: "
            "a region belongs to one cloud (move the region to change it)"
        )


def update_scope(
    session: Session, project_id: str, obj: Any, data: dict[str, Any], what: str
) -> Any:
    """Update a cloud, region or cell; ``cloud_id`` moves a region, ``region_id`` a cell.

    What the moved object holds moves with it, so that a host's cloud is always
    its region's and its cell in its region: a region's cells and hosts take the
    new cloud; a cell's hosts the new region and cloud.
    """
    if isinstance(obj, Region) and data.get("cloud_id") is not None:
        cloud = find_by_ref(session, Cloud, project_id, data["cloud_id"], "cloud")
        if cloud.id != obj.cloud_id:
            obj.cloud_id = cloud.id
            _move_contents(session, Cell, Cell.region_id == obj.id, {"cloud_id": cloud.id}, what)
            _move_contents(session, Host, Host.region_id == obj.id, {"cloud_id": cloud.id}, what)
    elif isinstance(obj, Cell):
        region: Any = (
            find_by_ref(session, Region, project_id, data["region_id"], "region")
            if data.get("region_id") is not None
            else session.get(Region, obj.region_id)
        )
        _check_cloud(session, project_id, region, data.get("cloud_id"))
        if region.id != obj.region_id:
            obj.region_id, obj.cloud_id = region.id, region.cloud_id
            moved = {"region_id": region.id, "cloud_id": region.cloud_id}
            _move_contents(session, Host, Host.cell_id == obj.id, moved, what)
    return update_simple(session, obj, data, what)


def _move_contents(
    session: Session, model: type[Any], where: Any, values: dict[str, Any], what: str
) -> None:
    try:
        with session.begin_nested():
            session.execute(update(model).where(where).values(**values))
    except IntegrityError as exc:
        raise Conflict(
            f"the {model.__tablename__} of this {what} clash by name with those where it moves"
        ) from exc


def update_simple(session: Session, obj: Any, data: dict[str, Any], what: str) -> Any:
    """Update name/note/variables of a project, cloud, region or cell."""
    if "name" in data and data["name"] is not None:
        obj.name = check_name(data["name"], what)
    if "note" in data and hasattr(obj, "note"):
        obj.note = data["note"]
    if data.get("variables") is not None:
        obj.variables = dict(data["variables"])
    flush_unique(session, what, obj.name)
    return obj


def delete_checked(session: Session, obj: Any, what: str) -> None:
    """Delete, refusing (409) while other inventory still points at the object."""
    dependants: dict[type[Any], list[tuple[type[Any], Any]]] = {
        Cloud: [(Region, Region.cloud_id)],
        Region: [(Cell, Cell.region_id), (Host, Host.region_id)],
        Cell: [(Host, Host.cell_id)],
        Host: [(Host, Host.parent_id)],
    }
    for model, column in dependants.get(type(obj), []):
        count = session.execute(select(func.count()).select_from(model).where(column == obj.id))
        if count.scalar_one():
            raise Conflict(f"{what} {obj.id} still has {model.__tablename__}; delete them first")
    session.delete(obj)
    session.flush()


def list_scoped(
    session: Session,
    model: type,
    project_id: str,
    page: PageRequest,
    filters: ScopeFilters,
) -> Page[Any]:
    """Clouds, regions or cells of the project matching every given filter."""
    stmt = scoped(model, project_id)
    if filters.name is not None:
        stmt = stmt.where(model.name == filters.name)  # type: ignore[attr-defined]
    for key, ref_model, ref in (
        ("cloud_id", Cloud, filters.cloud),
        ("region_id", Region, filters.region),
    ):
        if ref is not None:
            found: Any = find_by_ref(session, ref_model, project_id, ref, key[:-3])
            stmt = stmt.where(getattr(model, key) == found.id)
    vars_filters = parse_vars_filters(filters.vars)
    if vars_filters:
        resolver = VariableResolver(session)
        ids = [
            obj.id
            for obj in session.execute(stmt).scalars()
            if matches_vars(
                resolver.resolved(obj) if filters.resolved else obj.variables, vars_filters
            )
        ]
        stmt = scoped(model, project_id).where(model.id.in_(ids))  # type: ignore[attr-defined]
    return paginate(session, stmt, model, page, SORT_KEYS)


# --- hosts ----------------------------------------------------------------------


def create_host(session: Session, project_id: str, data: dict[str, Any]) -> Host:
    if data.get("region_id") is None:
        raise InvalidInput("region_id is required")
    region = find_by_ref(session, Region, project_id, data["region_id"], "region")
    _check_cloud(session, project_id, region, data.get("cloud_id"))
    host = Host(project_id=project_id, region_id=region.id, cloud_id=region.cloud_id)
    _apply_host_fields(session, project_id, host, {"device_type": "server", **data})
    session.add(host)
    flush_unique(session, "host in this region", host.name)
    return host


def update_host(session: Session, project_id: str, host: Host, data: dict[str, Any]) -> Host:
    if data.get("region_id") is not None:
        region = find_by_ref(session, Region, project_id, data["region_id"], "region")
        host.region_id, host.cloud_id = region.id, region.cloud_id
    if data.get("cloud_id") is not None:
        _check_cloud(session, project_id, session.get(Region, host.region_id), data["cloud_id"])  # type: ignore[arg-type]
    _apply_host_fields(session, project_id, host, data)
    flush_unique(session, "host in this region", host.name)
    return host


def _apply_host_fields(session: Session, project_id: str, host: Host, data: dict[str, Any]) -> None:
    if "name" in data and data["name"] is not None:
        host.name = check_name(data["name"], "host")
    for field in ("ip_address", "device_type", "active", "note"):
        if field in data and data[field] is not None:
            setattr(host, field, data[field])
    if "cell_id" in data:
        if data["cell_id"] is None:
            host.cell_id = None
        else:
            cell = find_by_ref(session, Cell, project_id, data["cell_id"], "cell")
            if cell.region_id != host.region_id:
                raise InvalidInput(f"cell {cell.name!r} is not in the host's region")
            host.cell_id = cell.id
    if "parent_id" in data:
        host.parent_id = _checked_parent(session, project_id, host, data["parent_id"])
    if data.get("variables") is not None:
        host.variables = dict(data["variables"])
    if data.get("labels") is not None:
        set_labels(host, data["labels"])


def _checked_parent(session: Session, project_id: str, host: Host, ref: Any) -> int | None:
    if ref is None:
        return None
    parent = find_by_ref(session, Host, project_id, ref, "parent host")
    seen = {host.id} if host.id else set()
    current: Host | None = parent
    while current is not None:
        if current.id in seen:
            raise InvalidInput("a host cannot be its own ancestor")
        seen.add(current.id)
        current = session.get(Host, current.parent_id) if current.parent_id else None
    return parent.id


def set_labels(host: Host, labels: Iterable[str]) -> None:
    wanted = sorted({check_name(label, "label") for label in labels})
    existing = {row.label: row for row in host.label_rows}
    host.label_rows = [existing.get(label) or HostLabel(label=label) for label in wanted]


def get_host(session: Session, project_id: str, ref: Any) -> Host:
    """A host of the project, by id or name (NotFound for another project's)."""
    return find_by_ref(session, Host, project_id, ref, "host")


def host_query(session: Session, project_id: str, filters: dict[str, Any]) -> Select[Any]:
    """Hosts of the project matching every given filter (``vars`` included)."""
    stmt = scoped(Host, project_id)
    refs = {
        "region": (Region, Host.region_id),
        "cell": (Cell, Host.cell_id),
        "cloud": (Cloud, Host.cloud_id),
    }
    for key, (model, column) in refs.items():
        ref = filters.get(f"{key}_id") or filters.get(key)
        if ref is not None:
            found: Any = find_by_ref(session, model, project_id, ref, key)
            stmt = stmt.where(column == found.id)
    for key in ("name", "device_type", "ip_address", "active"):
        if filters.get(key) is not None:
            stmt = stmt.where(getattr(Host, key) == filters[key])
    for label in filters.get("label") or []:
        stmt = stmt.where(Host.id.in_(select(HostLabel.host_id).where(HostLabel.label == label)))
    vars_filters = parse_vars_filters(filters.get("vars") or [])
    if vars_filters:
        candidates = list(session.execute(stmt).scalars())
        resolver = VariableResolver(session)
        ids = [h.id for h in candidates if matches_vars(resolver.host_variables(h), vars_filters)]
        stmt = scoped(Host, project_id).where(Host.id.in_(ids))
    if filters.get("parent") is not None:
        parent: Any = find_by_ref(session, Host, project_id, filters["parent"], "parent host")
        if filters.get("descendants"):
            stmt = stmt.where(Host.id.in_(descendant_ids(session, project_id, parent.id)))
        else:
            stmt = stmt.where(Host.parent_id == parent.id)
    if filters.get("ids") is not None:  # a task's token: its job's hosts only
        stmt = stmt.where(Host.id.in_(filters["ids"]))
    return stmt


def descendant_ids(session: Session, project_id: str, host_id: int) -> list[int]:
    """The hosts below a host: its children, theirs, and so on."""
    children: dict[int, list[int]] = {}
    rows = session.execute(
        select(Host.id, Host.parent_id).where(
            Host.project_id == project_id, Host.parent_id.is_not(None)
        )
    )
    for child, parent in rows:
        if parent is not None:
            children.setdefault(parent, []).append(child)
    found: list[int] = []
    pending = list(children.get(host_id, []))
    while pending:
        current = pending.pop()
        if current not in found and current != host_id:
            found.append(current)
            pending.extend(children.get(current, []))
    return found


# HostRead's fields before labels and variables, in its order (the JSON's).
HOST_FIELDS = (
    "id",
    "project_id",
    "cloud_id",
    "region_id",
    "cell_id",
    "parent_id",
    "name",
    "ip_address",
    "device_type",
    "active",
    "note",
)


# The queries of a page's labels, ancestors and scopes: built once, each taking
# the page's ids as one expanding parameter, so SQLAlchemy compiles each once
# and a page costs no per-value expression building.
_PAGE_COLUMNS = [Host.__table__.c[name] for name in (*HOST_FIELDS, "variables")] + [
    Host.created_at,
    Host.updated_at,
]
_PAGE_LABELS = (
    select(HostLabel.host_id, HostLabel.label)
    .where(HostLabel.host_id.in_(bindparam("hosts", expanding=True)))
    .order_by(HostLabel.host_id, HostLabel.label)
)


def _ancestors_query() -> Select[Any]:
    first = (
        select(Host.id, Host.parent_id)
        .where(
            Host.id.in_(bindparam("parents", expanding=True)),
            Host.project_id == bindparam("project"),
        )
        .cte("ancestors", recursive=True)
    )
    above = aliased(Host)
    ancestors = first.union(  # UNION, not ALL: a loop of parents ends
        select(above.id, above.parent_id).join(first, above.id == first.c.parent_id)
    )
    return select(Host.id, Host.parent_id, Host.variables).join(
        ancestors, Host.id == ancestors.c.id
    )


_PAGE_ANCESTORS = _ancestors_query()
_SCOPE_KEYS = ((Cell, "cell_id"), (Region, "region_id"), (Cloud, "cloud_id"))
_PAGE_SCOPES = union_all(
    *(
        select(literal(model.__tablename__), model.id.cast(String), model.variables).where(
            model.id.in_(bindparam(key, expanding=True))
        )
        for model, key in _SCOPE_KEYS
    ),
    select(literal("projects"), Project.id, Project.variables).where(
        Project.id == bindparam("project")
    ),
)


def host_page(
    session: Session, project_id: str, page: PageRequest, filters: dict[str, Any], resolved: bool
) -> Page[dict[str, Any]]:
    """A page of hosts as dicts (``HostRead``'s fields), labels and (resolved)
    variables loaded for the whole page at once, with Core statements on the
    session's connection (rows, not ORM objects)."""
    stmt = host_query(session, project_id, filters).with_only_columns(*_PAGE_COLUMNS)
    rows = paginate_rows(session, stmt, Host, page, HOST_SORT_KEYS)
    connection = session.connection()
    if not rows.items:
        return Page(items=[], has_more=False)
    labels: dict[int, list[str]] = {row.id: [] for row in rows.items}
    for host_id, label in connection.execute(_PAGE_LABELS, {"hosts": list(labels)}):
        labels[host_id].append(label)
    chains = _variable_chains(connection, project_id, rows.items) if resolved else {}
    hosts = []
    for row in rows.items:
        host = dict(zip(HOST_FIELDS, row, strict=False))  # the first columns, in its order
        host["labels"] = labels[row.id]
        host["variables"] = resolve_variables(chains[row.id]) if resolved else row.variables
        host["created_at"], host["updated_at"] = row.created_at, row.updated_at
        hosts.append(host)
    return Page(items=hosts, has_more=rows.has_more)


def _variable_chains(
    connection: Connection, project_id: str, rows: list[Row[Any]]
) -> dict[int, list[dict[str, Any] | None]]:
    """Each host's variables and those of its scopes, most specific first: one
    query for every ancestor host (none when no host has a parent), one for the
    cells, regions and clouds of the page, and its project."""
    parents: dict[int, Row[Any]] = {}
    wanted = {row.parent_id for row in rows if row.parent_id is not None}
    if wanted:
        found = connection.execute(
            _PAGE_ANCESTORS, {"parents": sorted(wanted), "project": project_id}
        )
        parents = {parent.id: parent for parent in found}
    ids = {key: sorted({getattr(row, key) for row in rows} - {None}) for _, key in _SCOPE_KEYS}
    scopes = {
        (kind, key): variables
        for kind, key, variables in connection.execute(_PAGE_SCOPES, {**ids, "project": project_id})
    }
    chains = {}
    for row in rows:
        chain = [row.variables]
        seen = {row.id}
        parent = parents.get(row.parent_id) if row.parent_id is not None else None
        while parent is not None and parent.id not in seen:
            chain.append(parent.variables)
            seen.add(parent.id)
            parent = parents.get(parent.parent_id) if parent.parent_id is not None else None
        chain += [
            scopes.get(("cells", str(row.cell_id))),
            scopes.get(("regions", str(row.region_id))),
            scopes.get(("clouds", str(row.cloud_id))),
            scopes.get(("projects", row.project_id)),
        ]
        chains[row.id] = chain
    return chains


# --- variables ------------------------------------------------------------------


class VariableResolver:
    """Resolves host variables, caching every scope it loads."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._cache: dict[tuple[type, Any], Any] = {}

    def _get(self, model: type, key: Any) -> Any:
        if key is None:
            return None
        if (model, key) not in self._cache:
            self._cache[(model, key)] = self.session.get(model, key)
        return self._cache[(model, key)]

    def chain(self, host: Host) -> list[Any]:
        """The scopes of a host, most specific first."""
        scopes: list[Any] = [host]
        seen = {host.id}
        parent = self._get(Host, host.parent_id)
        while parent is not None and parent.id not in seen:
            scopes.append(parent)
            seen.add(parent.id)
            parent = self._get(Host, parent.parent_id)
        for model, key in (
            (Cell, host.cell_id),
            (Region, host.region_id),
            (Cloud, host.cloud_id),
            (Project, host.project_id),
        ):
            scope = self._get(model, key)
            if scope is not None:
                scopes.append(scope)
        return scopes

    def host_variables(self, host: Host) -> dict[str, Any]:
        return resolve_variables(scope.variables for scope in self.chain(host))

    def variable_sources(self, host: Host) -> dict[str, list[tuple[str, Any]]]:
        """Per key of the host's resolved variables, each scope defining it as
        ``("cell cell1", value)``, the one that wins first (the console's host page)."""
        kinds = {Cell: "cell", Region: "region", Cloud: "cloud", Project: "project"}

        def label(scope: Any) -> str:
            if scope is host:
                return "host"
            return f"{kinds.get(type(scope), 'parent host')} {scope.name}"

        return resolve_with_sources((label(scope), scope.variables) for scope in self.chain(host))

    def names(self, host: Host) -> dict[str, str | None]:
        def name(model: type, key: Any) -> str | None:
            obj = self._get(model, key)
            return obj.name if obj is not None else None

        return {
            "region": name(Region, host.region_id),
            "cell": name(Cell, host.cell_id),
            "cloud": name(Cloud, host.cloud_id),
        }

    def resolved(self, obj: Any) -> dict[str, Any]:
        """Resolved variables of any inventory object."""
        if isinstance(obj, Host):
            return self.host_variables(obj)
        chain: list[Any] = [obj]
        if isinstance(obj, Cell):
            chain += [self._get(Region, obj.region_id), self._get(Cloud, obj.cloud_id)]
        elif isinstance(obj, Region):
            chain.append(self._get(Cloud, obj.cloud_id))
        if not isinstance(obj, Project):
            chain.append(self._get(Project, obj.project_id))
        return resolve_variables(scope.variables for scope in chain if scope is not None)


def merge_variables(obj: Any, values: dict[str, Any]) -> dict[str, Any]:
    obj.variables = {**obj.variables, **values}
    return obj.variables


def delete_variables(obj: Any, keys: list[str]) -> None:
    missing = [key for key in keys if key not in obj.variables]
    if missing:
        raise NotFound(f"no such variables: {', '.join(missing)}")
    obj.variables = {k: v for k, v in obj.variables.items() if k not in keys}


def get_variable_owner(session: Session, project_id: str, kind: str, object_id: Any) -> Any:
    model = VARIABLE_OWNERS[kind]
    if model is Project:
        if str(object_id) != project_id:
            raise NotFound(f"project {object_id} not found")
        return get_project(session, project_id)
    return find_by_ref(session, model, project_id, object_id, kind[:-1])


# --- ansible inventory ----------------------------------------------------------


def ansible_inventory(session: Session, project_id: str, filters: dict[str, Any]) -> dict[str, Any]:
    """Ansible's JSON inventory: groups per region, cell and label; resolved hostvars.

    A host's address is its ``ansible_host`` only when it is an IP address: a
    row stored before addresses were checked may hold anything, and the host
    is then listed without one rather than with text Ansible would act on.
    """
    hosts = list(
        session.execute(host_query(session, project_id, filters).order_by(Host.id)).scalars()
    )
    resolver = VariableResolver(session)
    inventory: dict[str, Any] = {"_meta": {"hostvars": {}}}
    groups: dict[str, list[str]] = {}
    for host in hosts:
        names = resolver.names(host)
        hostvars = resolver.host_variables(host)
        hostvars.pop("ansible_host", None)
        if is_ip_address(host.ip_address):
            hostvars["ansible_host"] = host.ip_address
        inventory["_meta"]["hostvars"][host.name] = hostvars
        for group in (names["region"], names["cell"], *host.labels):
            if group:
                groups.setdefault(group, []).append(host.name)
    for group, members in sorted(groups.items()):
        inventory[group] = {"hosts": members}
    inventory["all"] = {"hosts": [h.name for h in hosts], "children": sorted(groups)}
    return inventory
