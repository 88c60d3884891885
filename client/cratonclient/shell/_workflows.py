"""Workflow commands: ``workflow-create``, ``-list``, ``-show``, ``-update``,
``-delete``, ``-versions``.

Steps come either from ``--task`` options (a plain sequence, one step per
task) or from a YAML/JSON file holding ``{name?, description?, steps: [...]}``
(or just the list of steps). Tasks are sent as given, id or name: the server
resolves them and refuses a workflow naming a task that does not exist.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

import yaml

from ._common import (
    CommandError,
    Context,
    add_command,
    add_fields_option,
    add_list_options,
    list_command,
    print_items,
)

WORKFLOW_FIELDS = ("id", "name", "version", "description")
STEP_COLUMNS = ("name", "task_name", "args", "timeout", "retries", "required", "depends_on")


def read_workflow_file(path: str) -> dict[str, Any]:
    """``{name?, description?, steps}`` from a YAML or JSON file (JSON is YAML)."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise CommandError(f"Cannot read {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise CommandError(f"{path} is not valid YAML or JSON: {exc}") from exc
    if isinstance(data, list):
        data = {"steps": data}
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
        raise CommandError(f"{path} must hold a mapping with a 'steps' list.")
    unknown = set(data) - {"name", "description", "steps"}
    if unknown:
        raise CommandError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}.")
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
        "--file", metavar="FILE", help="YAML or JSON file: {name?, description?, steps}"
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

    parser = add_command(subparsers, "workflow-delete", do_workflow_delete, "Delete a workflow.")
    parser.add_argument("workflow", metavar="WORKFLOW", help=wf_help)

    parser = add_command(
        subparsers, "workflow-versions", do_workflow_versions, "List a workflow's versions."
    )
    parser.add_argument("workflow", metavar="WORKFLOW", help=wf_help)
    add_fields_option(parser, ("version", "description", "created_at"))
