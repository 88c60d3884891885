"""Workflow commands: ``workflow-create``, ``-list``, ``-show``, ``-update``,
``-delete``, ``-versions``.

Steps come either from ``--task`` options (a plain sequence, one step per
task) or from a YAML/JSON file holding ``{name?, description?, steps: [...]}``
(or just the list of steps). Tasks are sent as given, id or name: the server
resolves them and refuses a workflow naming a task that does not exist.

A workflow file may come from anyone, so it is read with guards: at most
:data:`MAX_WORKFLOW_FILE_BYTES`, with YAML's safe loader, and anchors and
aliases are fine for sharing a step's arguments but not for a "billion
laughs" bomb — past :data:`MAX_YAML_ALIASES` aliases, a document that would
expand to more than :data:`MAX_YAML_NODES` nodes, or a recursive alias, the
command stops with an ``ERROR:`` before anything is expanded or sent.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

import yaml

from ..exceptions import HTTPError
from ._common import (
    CommandError,
    Context,
    add_command,
    add_fields_option,
    add_list_options,
    list_command,
    parse_duration,
    print_items,
)

WORKFLOW_FIELDS = ("id", "name", "version", "description")
MAX_WORKFLOW_FILE_BYTES = 1024 * 1024
MAX_YAML_ALIASES = 100
MAX_YAML_NODES = 100_000
#: What ``workflow-show`` prints that a file cannot set (ignored when read back).
SHOWN_ONLY = frozenset(
    {"id", "project_id", "version", "latest_version", "created_at", "updated_at"}
)
STEP_COLUMNS = ("name", "task_name", "args", "timeout", "retries", "required", "depends_on")


class _GuardedLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing alias bombs while the document is composed."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_YAML_ALIASES:
                raise CommandError(f"more than {MAX_YAML_ALIASES} YAML aliases: refused")
        return super().compose_node(parent, index)

    def compose_document(self) -> Any:
        node = super().compose_document()
        _expanded_size(node, {}, set())
        return node


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """Nodes ``node`` stands for once every alias is expanded (shared nodes count each time)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        raise CommandError("a YAML alias refers to itself: refused")
    open_nodes.add(key)
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [child for pair in node.value for child in pair]
    size = 1
    for child in children:
        size += _expanded_size(child, sizes, open_nodes)
        if size > MAX_YAML_NODES:
            raise CommandError(f"the YAML expands to more than {MAX_YAML_NODES} nodes: refused")
    open_nodes.discard(key)
    sizes[key] = size
    return size


def load_guarded_yaml(text: str) -> Any:
    """``yaml.safe_load`` with the alias-bomb guards of :class:`_GuardedLoader`."""
    loader = _GuardedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _read_bytes(path: str) -> bytes:
    """At most one byte past the cap, from the file or (``-``) standard input."""
    if path == "-":
        stdin = getattr(sys.stdin, "buffer", None)
        if stdin is not None:
            return bytes(stdin.read(MAX_WORKFLOW_FILE_BYTES + 1))
        return sys.stdin.read(MAX_WORKFLOW_FILE_BYTES + 1).encode()
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_WORKFLOW_FILE_BYTES + 1)
    except OSError as exc:
        raise CommandError(f"Cannot read {path}: {exc.strerror or exc}") from exc


def _editable_step(step: Any, position: int, path: str) -> Any:
    """A step as a file gives it: a shown step's ``task_name`` is its task (by name,
    so the file works in another project), durations (``5m``) become seconds."""
    if not isinstance(step, dict):
        return step
    step = dict(step)
    if "task_name" in step:
        task_name = step.pop("task_name")
        if "task" not in step:
            step["task"] = task_name
            step.pop("task_id", None)
    for key, whole in (("timeout", True), ("retry_delay", False)):
        if step.get(key) is None:
            continue
        try:
            seconds = parse_duration(step[key])
        except ValueError as exc:
            raise CommandError(f"{path}: step {position}: {key}: {exc}") from None
        step[key] = max(1, round(seconds)) if whole else seconds
    return step


def read_workflow_file(path: str) -> dict[str, Any]:
    """``{name?, description?, steps}`` from a YAML or JSON file (JSON is YAML), or from
    standard input for ``-``; the output of ``workflow-show --format yaml|json`` is one."""
    raw = _read_bytes(path)
    path = "standard input" if path == "-" else path
    if len(raw) > MAX_WORKFLOW_FILE_BYTES:
        raise CommandError(f"{path} is larger than {MAX_WORKFLOW_FILE_BYTES} bytes: refused")
    try:
        data = load_guarded_yaml(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CommandError(f"{path} is not UTF-8 text: {exc}") from exc
    except CommandError as exc:
        raise CommandError(f"{path}: {exc}") from exc
    except RecursionError as exc:
        raise CommandError(f"{path} is nested too deeply") from exc
    except yaml.YAMLError as exc:
        raise CommandError(f"{path} is not valid YAML or JSON: {exc}") from exc
    if isinstance(data, list):
        data = {"steps": data}
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
        raise CommandError(f"{path} must hold a mapping with a 'steps' list.")
    data = {key: value for key, value in data.items() if key not in SHOWN_ONLY}
    unknown = set(data) - {"name", "description", "steps"}
    if unknown:
        raise CommandError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}.")
    data["steps"] = [_editable_step(s, i, path) for i, s in enumerate(data["steps"], 1)]
    return data


def _definition(args: argparse.Namespace) -> dict[str, Any]:
    """name, description and steps from ``--file``/``--task``, options overriding the file."""
    definition: dict[str, Any] = read_workflow_file(args.file) if args.file else {}
    if args.task:
        definition["steps"] = [{"task": task} for task in args.task]
    if getattr(args, "name", None):
        definition["name"] = args.name
    if args.description is not None:
        definition["description"] = args.description
    return definition


def steps_table(ctx: Context, steps: list[Mapping[str, Any]]):
    rows = [[i, *(step.get(c) for c in STEP_COLUMNS)] for i, step in enumerate(steps)]
    return ctx.out.table(("#", *STEP_COLUMNS), rows)


def show_workflow(ctx: Context, workflow: Mapping[str, Any]) -> None:
    nested = {}
    if ctx.out.is_table and isinstance(workflow.get("steps"), list):
        nested["steps"] = steps_table(ctx, workflow["steps"])
    ctx.out.show(workflow, nested)


def do_workflow_create(ctx: Context, args: argparse.Namespace) -> None:
    definition = _definition(args)
    if not definition.get("name"):
        raise CommandError("The workflow needs a name: --name, or 'name' in the file.")
    show_workflow(ctx, ctx.client.workflows.create(**definition))


def do_workflow_list(ctx: Context, args: argparse.Namespace) -> None:
    list_command(ctx, args, ctx.client.workflows, {"name": args.name})


def do_workflow_show(ctx: Context, args: argparse.Namespace) -> None:
    workflows = ctx.client.workflows
    show_workflow(ctx, workflows.get(workflows.resolve_id(args.workflow), version=args.version))


def do_workflow_update(ctx: Context, args: argparse.Namespace) -> None:
    definition = _definition(args)
    definition.pop("name", None)  # a file's name does not rename the workflow
    if not definition:
        raise CommandError("Nothing to update: give --task, --file or --description.")
    workflows = ctx.client.workflows
    show_workflow(ctx, workflows.update(workflows.resolve_id(args.workflow), **definition))


def do_workflow_validate(ctx: Context, args: argparse.Namespace) -> int:
    """Check a workflow file with the server (its tasks, graph, secrets); write nothing.

    Exit 0 if valid, 1 with the reason if not (2: the file cannot be read).
    """
    definition = read_workflow_file(args.file)
    if args.name:
        definition["name"] = args.name
    where = "standard input" if args.file == "-" else args.file
    try:
        checked = ctx.client.workflows.validate(**definition)
    except HTTPError as exc:
        if exc.status not in (400, 404, 409, 422):
            raise
        ctx.out.error(f"{where}: {exc.message}")
        return 1
    if not ctx.out.is_table:
        ctx.out.raw(checked)
        return 0
    steps = checked.get("steps") or []
    name = checked.get("name")
    about = ""
    if name:
        about = (
            f" (updates workflow {name})" if checked.get("exists") else f" (new workflow {name})"
        )
    ctx.out.note(f"{where} is valid: {len(steps)} step(s){about}.")
    ctx.out.print_renderable(steps_table(ctx, steps))
    return 0


def do_workflow_delete(ctx: Context, args: argparse.Namespace) -> None:
    workflows = ctx.client.workflows
    workflow_id = workflows.resolve_id(args.workflow)
    workflows.delete(workflow_id)
    if ctx.out.is_table:
        ctx.out.text(f"Deleted workflow {workflow_id}.")


def do_workflow_versions(ctx: Context, args: argparse.Namespace) -> None:
    workflows = ctx.client.workflows
    print_items(ctx, args, workflows.versions(workflows.resolve_id(args.workflow)))


def _steps_options(parser: argparse.ArgumentParser, required: bool) -> None:
    source = parser.add_mutually_exclusive_group(required=required)
    source.add_argument(
        "--task", action="append", metavar="TASK", help="a step running this task (repeatable)"
    )
    source.add_argument(
        "--file",
        metavar="FILE",
        help="YAML or JSON file: {name?, description?, steps} ('-': standard input; "
        "workflow-show --format yaml output works); timeouts and retry delays take 90s, 5m, 1h",
    )
    parser.add_argument("--description", help="what the workflow does")


def register(subparsers: argparse._SubParsersAction) -> None:
    wf_help = "workflow (id or name)"

    parser = add_command(subparsers, "workflow-create", do_workflow_create, "Create a workflow.")
    parser.add_argument("--name", help="workflow name (overrides the file's)")
    _steps_options(parser, required=True)

    parser = add_command(subparsers, "workflow-list", do_workflow_list, "List workflows.")
    parser.add_argument("--name", help="only the workflow with this name")
    add_list_options(parser, WORKFLOW_FIELDS)

    parser = add_command(subparsers, "workflow-show", do_workflow_show, "Show a workflow.")
    parser.add_argument("workflow", metavar="WORKFLOW", help=wf_help)
    parser.add_argument("--version", type=int, metavar="N", help="this version (default: latest)")

    parser = add_command(
        subparsers, "workflow-update", do_workflow_update, "Change a workflow (a new version)."
    )
    parser.add_argument("workflow", metavar="WORKFLOW", help=wf_help)
    _steps_options(parser, required=False)

    parser = add_command(
        subparsers,
        "workflow-validate",
        do_workflow_validate,
        "Check a workflow file with the server (tasks, graph, secrets) without writing it.",
    )
    parser.add_argument("file", metavar="FILE", help="YAML or JSON workflow file ('-': stdin)")
    parser.add_argument("--name", help="the workflow's name (overrides the file's)")

    parser = add_command(subparsers, "workflow-delete", do_workflow_delete, "Delete a workflow.")
    parser.add_argument("workflow", metavar="WORKFLOW", help=wf_help)

    parser = add_command(
        subparsers, "workflow-versions", do_workflow_versions, "List a workflow's versions."
    )
    parser.add_argument("workflow", metavar="WORKFLOW", help=wf_help)
    add_fields_option(parser, ("version", "description", "created_at"))
