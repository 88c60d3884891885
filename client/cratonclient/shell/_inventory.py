"""Inventory commands: ``project-*``, ``cloud-*``, ``region-*``, ``cell-*``, ``host-*``.

Every kind gets the same eight commands (create, list, show, update, delete,
vars-get, vars-set, vars-delete); what differs is described by an
:class:`InventoryKind`: the options of create, update and list, and how they
become fields and filters. Objects named on the command line (a host, the
region of a new host) may be ids or names.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._managers import Manager
from ._common import (
    CommandError,
    Context,
    add_command,
    add_list_options,
    check_vars_filters,
    id_or_name_param,
    list_command,
    parse_key_values,
)

Options = Callable[[argparse.ArgumentParser], object]
Fields = Callable[[Context, argparse.Namespace], dict[str, Any]]


@dataclass(frozen=True)
class InventoryKind:
    noun: str
    plural: str
    list_fields: tuple[str, ...]
    create_options: Options
    create_fields: Fields
    update_options: Options
    update_fields: Fields
    list_options: Options = lambda parser: None
    list_filters: Fields = lambda ctx, args: {}

    def manager(self, ctx: Context) -> Any:
        """The client's manager of this kind (all of them have the variables helpers)."""
        return getattr(ctx.client, self.plural)


# -- shared options --------------------------------------------------------------


def _name_option(parser: argparse.ArgumentParser, help: str, required: bool = False) -> None:
    # -n: Craton's CLI's spelling, so that its users' scripts run unchanged.
    parser.add_argument("--name", "-n", required=required, help=help)


def _active_word(text: str) -> bool:
    """Craton's ``-a true|false`` (its CLI took the value as typed)."""
    words = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
    if text.lower() not in words:
        raise argparse.ArgumentTypeError(f"not true or false: {text!r}")
    return words[text.lower()]


def _name_note_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
    _name_option(parser, "name", required)
    parser.add_argument("--note", help="free-form note")


def _var_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--var", action="append", metavar="KEY=VALUE", help="a variable (repeatable; JSON values)"
    )


def _name_note_fields(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return {"name": args.name, "note": getattr(args, "note", None)}


def _with_variables(fields: Fields) -> Fields:
    def collect(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
        variables = parse_key_values(args.var, "--var")
        return {**fields(ctx, args), "variables": variables or None}

    return collect


def _resolve(manager: Manager, value: str | None) -> Any:
    return None if value is None else manager.resolve_id(value)


# -- per kind --------------------------------------------------------------------


def _cloud_create_options(parser: argparse.ArgumentParser) -> None:
    _name_note_options(parser)
    _var_option(parser)


def _project_create_options(parser: argparse.ArgumentParser) -> None:
    _name_option(parser, "name", required=True)
    _var_option(parser)


def _region_create_options(parser: argparse.ArgumentParser) -> None:
    _name_note_options(parser)
    parser.add_argument("--cloud", required=True, help="cloud (id or name)")
    _var_option(parser)


def _region_create_fields(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return {**_name_note_fields(ctx, args), "cloud_id": _resolve(ctx.client.clouds, args.cloud)}


def _vars_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--vars",
        nargs="+",
        action="extend",
        metavar="PATH:VALUE",
        help=f"resolved variable of the {what} at a dotted path equals VALUE (JSON if it parses)",
    )


def _region_list_options(parser: argparse.ArgumentParser) -> None:
    _name_option(parser, "only the region with this name")
    parser.add_argument("--cloud", help="only regions of this cloud (id or name)")
    _vars_option(parser, "region")


def _region_list_filters(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "name": args.name,
        "cloud_id": _resolve(ctx.client.clouds, args.cloud),
        "vars": check_vars_filters(args.vars),
    }


def _region_update_options(parser: argparse.ArgumentParser) -> None:
    _name_note_options(parser, required=False)
    parser.add_argument("--cloud", help="move the region, its cells and hosts to this cloud")


def _region_update_fields(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return {**_name_note_fields(ctx, args), "cloud_id": _resolve(ctx.client.clouds, args.cloud)}


def _cell_options(parser: argparse.ArgumentParser, create: bool) -> None:
    _name_note_options(parser, required=create)
    if create:
        parser.add_argument("--region", "-r", required=True, help="region (id or name)")
    else:
        parser.add_argument("--region", "-r", help="move the cell and its hosts to this region")
    parser.add_argument("--cloud", help="cloud (id or name): checked to be the region's")


def _cell_create_options(parser: argparse.ArgumentParser) -> None:
    _cell_options(parser, create=True)
    _var_option(parser)


def _cell_fields(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return {
        **_name_note_fields(ctx, args),
        "region_id": _resolve(ctx.client.regions, args.region),
        "cloud_id": _resolve(ctx.client.clouds, args.cloud),
    }


def _cell_list_options(parser: argparse.ArgumentParser) -> None:
    _name_option(parser, "only the cell with this name")
    parser.add_argument("--region", "-r", help="only cells of this region (id or name)")
    parser.add_argument("--cloud", help="only cells of this cloud (id or name)")
    _vars_option(parser, "cell")


def _cell_list_filters(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "name": args.name,
        "region_id": _resolve(ctx.client.regions, args.region),
        "cloud_id": _resolve(ctx.client.clouds, args.cloud),
        "vars": check_vars_filters(args.vars),
    }


def _host_common_options(parser: argparse.ArgumentParser, create: bool) -> None:
    # The second spellings (-n, -i, --ip_address, -r, -c, -t, --type, -l,
    # --labels, -a) are Craton's CLI's, so that its users' scripts run unchanged.
    _name_option(parser, "host name", required=create)
    parser.add_argument(
        "--ip-address", "-i", "--ip_address", required=create, metavar="IP", help="address"
    )
    parser.add_argument(
        "--region",
        "-r",
        required=create,
        help="region (id or name)" + ("" if create else "; moves the host"),
    )
    parser.add_argument("--cloud", help="cloud (id or name; default: the region's)")
    parser.add_argument("--cell", "-c", help="cell (id or name)")
    parser.add_argument(
        "--device-type", "-t", "--type", metavar="TYPE", help="device type (default: server)"
    )
    parser.add_argument("--parent", metavar="HOST", help="parent host (id or name)")
    parser.add_argument("--note", help="free-form note")
    parser.add_argument(
        "--label",
        "-l",
        "--labels",
        action="append",
        metavar="LABEL",
        help="a label (repeatable)" + ("" if create else "; replaces all labels"),
    )
    parser.add_argument(
        "-a", dest="active", type=_active_word, metavar="BOOL", help=argparse.SUPPRESS
    )


def _host_create_options(parser: argparse.ArgumentParser) -> None:
    _host_common_options(parser, create=True)
    _var_option(parser)


def _host_update_options(parser: argparse.ArgumentParser) -> None:
    _host_common_options(parser, create=False)
    parser.add_argument(
        "--active", action=argparse.BooleanOptionalAction, default=None, help="active or not"
    )  # -a true|false too (_host_common_options)


def _host_fields(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    client = ctx.client
    fields = {
        "name": args.name,
        "ip_address": args.ip_address,
        "cell_id": _resolve(client.cells, args.cell),
        "device_type": args.device_type,
        "parent_id": _resolve(client.hosts, args.parent),
        "note": args.note,
        "labels": args.label,
        "active": getattr(args, "active", None),
    }
    fields["region_id"] = _resolve(client.regions, args.region)
    fields["cloud_id"] = _resolve(client.clouds, args.cloud)
    return fields


def _host_list_options(parser: argparse.ArgumentParser) -> None:
    _name_option(parser, "only the host with this name")
    parser.add_argument("--region", "-r", help="only hosts of this region (id or name)")
    parser.add_argument("--cell", "-c", help="only hosts of this cell (id or name)")
    parser.add_argument("--cloud", help="only hosts of this cloud (id or name)")
    parser.add_argument("--label", nargs="+", action="extend", help="labels (all must match)")
    parser.add_argument("--device-type", metavar="TYPE", help="only this device type")
    parser.add_argument("--ip-address", "--ip", metavar="IP", help="only the host at this address")
    parser.add_argument(
        "--vars",
        nargs="+",
        action="extend",
        metavar="PATH:VALUE",
        help="resolved variable at a dotted path equals VALUE (JSON if it parses)",
    )


def _host_list_filters(ctx: Context, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "name": args.name,
        **id_or_name_param(args.region, "region_id", "region"),
        **id_or_name_param(args.cell, "cell_id", "cell"),
        "cloud_id": _resolve(ctx.client.clouds, args.cloud),
        "label": args.label,
        "device_type": args.device_type,
        "ip_address": args.ip_address,
        "vars": check_vars_filters(args.vars),
    }


KINDS = (
    InventoryKind(
        noun="project",
        plural="projects",
        list_fields=("id", "name"),
        create_options=_project_create_options,
        create_fields=_with_variables(lambda ctx, args: {"name": args.name}),
        update_options=lambda parser: _name_option(parser, "new name"),
        update_fields=lambda ctx, args: {"name": args.name},
        list_options=lambda parser: _name_option(parser, "only this name"),
        list_filters=lambda ctx, args: {"name": args.name},
    ),
    InventoryKind(
        noun="cloud",
        plural="clouds",
        list_fields=("id", "name", "note"),
        create_options=_cloud_create_options,
        create_fields=_with_variables(_name_note_fields),
        update_options=lambda parser: _name_note_options(parser, required=False),
        update_fields=_name_note_fields,
        list_options=lambda parser: _name_option(parser, "only this name"),
        list_filters=lambda ctx, args: {"name": args.name},
    ),
    InventoryKind(
        noun="region",
        plural="regions",
        list_fields=("id", "name", "cloud_id", "note"),
        create_options=_region_create_options,
        create_fields=_with_variables(_region_create_fields),
        update_options=_region_update_options,
        update_fields=_region_update_fields,
        list_options=_region_list_options,
        list_filters=_region_list_filters,
    ),
    InventoryKind(
        noun="cell",
        plural="cells",
        list_fields=("id", "name", "region_id", "cloud_id", "note"),
        create_options=_cell_create_options,
        create_fields=_with_variables(_cell_fields),
        update_options=lambda parser: _cell_options(parser, create=False),
        update_fields=_cell_fields,
        list_options=_cell_list_options,
        list_filters=_cell_list_filters,
    ),
    InventoryKind(
        noun="host",
        plural="hosts",
        list_fields=(
            "id",
            "name",
            "ip_address",
            "device_type",
            "region_id",
            "cell_id",
            "labels",
            "active",
        ),
        create_options=_host_create_options,
        create_fields=_with_variables(_host_fields),
        update_options=_host_update_options,
        update_fields=_host_fields,
        list_options=_host_list_options,
        list_filters=_host_list_filters,
    ),
)


# -- the eight commands -----------------------------------------------------------


def _create(kind: InventoryKind):
    def command(ctx: Context, args: argparse.Namespace) -> None:
        fields = {k: v for k, v in kind.create_fields(ctx, args).items() if v is not None}
        ctx.out.show(kind.manager(ctx).create(**fields))

    return command


def _list(kind: InventoryKind):
    def command(ctx: Context, args: argparse.Namespace) -> None:
        list_command(ctx, args, kind.manager(ctx), kind.list_filters(ctx, args))

    return command


def _show(kind: InventoryKind):
    def command(ctx: Context, args: argparse.Namespace) -> None:
        params = {}
        if getattr(args, "resolved", None) is not None:
            params["resolved-values"] = args.resolved
        manager = kind.manager(ctx)
        ctx.out.show(manager.get(manager.resolve_id(args.id), **params))

    return command


def _update(kind: InventoryKind):
    def command(ctx: Context, args: argparse.Namespace) -> None:
        manager = kind.manager(ctx)
        fields = {k: v for k, v in kind.update_fields(ctx, args).items() if v is not None}
        if not fields:
            raise CommandError(f"Nothing to update: see {kind.noun}-update --help.")
        object_id = manager.resolve_id(args.id)
        # Labels have their own endpoint, which replaces them all.
        labels = fields.pop("labels", None)
        if fields:
            updated = manager.update(object_id, **fields)
        if labels is not None:
            ctx.client.hosts.set_labels(object_id, labels)
            updated = manager.get(object_id)
        ctx.out.show(updated)

    return command


def _delete(kind: InventoryKind):
    def command(ctx: Context, args: argparse.Namespace) -> None:
        manager = kind.manager(ctx)
        object_id = manager.resolve_id(args.id)
        manager.delete(object_id)
        if ctx.out.is_table:
            ctx.out.text(f"Deleted {kind.noun} {object_id}.")

    return command


def _vars_get(kind: InventoryKind):
    def command(ctx: Context, args: argparse.Namespace) -> None:
        manager = kind.manager(ctx)
        ctx.out.mapping(manager.get_variables(manager.resolve_id(args.id), resolved=args.resolved))

    return command


def _vars_set(kind: InventoryKind):
    def command(ctx: Context, args: argparse.Namespace) -> None:
        manager = kind.manager(ctx)
        variables = parse_key_values(args.variables)
        ctx.out.mapping(manager.set_variables(manager.resolve_id(args.id), variables))

    return command


def _vars_delete(kind: InventoryKind):
    def command(ctx: Context, args: argparse.Namespace) -> None:
        manager = kind.manager(ctx)
        object_id = manager.resolve_id(args.id)
        manager.delete_variables(object_id, args.keys)
        if ctx.out.is_table:
            ctx.out.text(f"Deleted variable(s) {', '.join(args.keys)} of {kind.noun} {object_id}.")

    return command


def register(subparsers: argparse._SubParsersAction) -> None:
    for kind in KINDS:
        _register_kind(subparsers, kind)


def _register_kind(subparsers: argparse._SubParsersAction, kind: InventoryKind) -> None:
    noun = kind.noun
    ident = noun.upper()
    ident_help = f"{noun} ({'UUID' if noun == 'project' else 'id'} or name)"

    parser = add_command(subparsers, f"{noun}-create", _create(kind), f"Create a {noun}.")
    kind.create_options(parser)

    parser = add_command(subparsers, f"{noun}-list", _list(kind), f"List {kind.plural}.")
    kind.list_options(parser)
    add_list_options(parser, kind.list_fields)

    parser = add_command(subparsers, f"{noun}-show", _show(kind), f"Show a {noun}.")
    parser.add_argument("id", metavar=ident, help=ident_help)
    if noun == "host":
        parser.add_argument(
            "--resolved",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="show variables resolved from parents (server default: yes)",
        )

    parser = add_command(subparsers, f"{noun}-update", _update(kind), f"Update a {noun}.")
    parser.add_argument("id", metavar=ident, help=ident_help)
    kind.update_options(parser)

    parser = add_command(subparsers, f"{noun}-delete", _delete(kind), f"Delete a {noun}.")
    parser.add_argument("id", metavar=ident, help=ident_help)

    parser = add_command(
        subparsers, f"{noun}-vars-get", _vars_get(kind), f"Show the variables of a {noun}."
    )
    parser.add_argument("id", metavar=ident, help=ident_help)
    parser.add_argument(
        "--resolved",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="include variables inherited from parents (default: yes)",
    )

    parser = add_command(
        subparsers, f"{noun}-vars-set", _vars_set(kind), f"Set variables of a {noun} (merge)."
    )
    parser.add_argument("id", metavar=ident, help=ident_help)
    parser.add_argument(
        "variables", nargs="+", metavar="KEY=VALUE", help="variables (JSON values if they parse)"
    )

    parser = add_command(
        subparsers, f"{noun}-vars-delete", _vars_delete(kind), f"Delete variables of a {noun}."
    )
    parser.add_argument("id", metavar=ident, help=ident_help)
    parser.add_argument("keys", nargs="+", metavar="KEY", help="top-level keys to delete")
