"""Job template commands: ``template-create``, ``-list``, ``-show``, ``-update``,
``-delete``, ``template-launch``, and a template's incoming triggers:
``template-trigger-create`` (prints the URL and the secret, shown this
once), ``template-trigger-list``, ``template-trigger-delete``.

A parameter is declared with ``--parameter``, either as a JSON object or as
``name=mode,type=choice,choices=quick|full,required=true,default=quick``
(``description=`` last: it may hold commas). ``template-launch NAME --param
k=v`` sends each value as the string typed: the server reads it as the
parameter's type (``3`` for an int, ``true``/``false`` for a bool), so a
string parameter keeps ``007`` as typed. ``--wait`` and ``--follow`` watch the
job as ``job-create`` does.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ._common import (
    CommandError,
    Context,
    add_command,
    add_fields_option,
    add_list_options,
    duration_seconds,
    list_command,
    parse_key_values,
    positive_int,
    print_items,
)
from ._jobs import (
    _watch,
    add_target_options,
    add_wave_options,
    show_job,
    target_filters,
    wave_fields,
)

TEMPLATE_FIELDS = ("id", "name", "runs", "parameters", "concurrency", "description")
PARAMETER_KEYS = ("name", "type", "default", "required", "description", "choices")


def parse_parameter(spec: str) -> dict[str, Any]:
    """One ``--parameter``: a JSON object, or ``key=value`` pairs separated by commas."""
    if spec.lstrip().startswith("{"):
        try:
            declared = json.loads(spec)
        except ValueError as exc:
            raise CommandError(f"Bad --parameter {spec!r}: {exc}") from exc
        if not isinstance(declared, dict):
            raise CommandError(f"Bad --parameter {spec!r}: expected a JSON object.")
        return declared
    declared = {}
    rest = spec
    while rest:
        if rest.startswith("description="):
            declared["description"] = rest[len("description=") :]
            break
        item, _, rest = rest.partition(",")
        key, sep, value = item.partition("=")
        if key not in PARAMETER_KEYS or (not sep and key != "required"):
            raise CommandError(
                f"Bad --parameter {spec!r}: expected {', '.join(k + '=…' for k in PARAMETER_KEYS)}."
            )
        declared[key] = _parameter_field(key, value if sep else "true")
    if "name" not in declared:
        raise CommandError(f"Bad --parameter {spec!r}: name=… is missing.")
    return declared


def _parameter_field(key: str, value: str) -> Any:
    if key == "choices":
        return value.split("|")
    if key == "required":
        return value.lower() in ("true", "yes", "1")
    return value  # a default is sent as typed; the server reads it as the parameter's type


def _targets(args: argparse.Namespace) -> dict[str, Any] | None:
    filters = target_filters(args)
    if not args.host and not filters:
        return None
    return {"hosts": args.host or [], "filters": filters}


def _template_body(args: argparse.Namespace) -> dict[str, Any]:
    body = {
        "name": getattr(args, "new_name", None) or getattr(args, "name", None),
        "description": args.description,
        "workflow": args.workflow,
        "workflow_version": args.workflow_version,
        "task": args.task,
        "targets": _targets(args),
        "variables": parse_key_values(args.var, "--var") or None,
        "parameters": [parse_parameter(p) for p in args.parameter] if args.parameter else None,
        "concurrency": args.concurrency,
        "max_failures": args.max_failures,
        "timeout": args.timeout,
        **wave_fields(args),
    }
    return {k: v for k, v in body.items() if v is not None}


def readable_template(template: Any) -> dict[str, Any]:
    row = dict(template)
    if template.get("workflow_name"):
        version = template.get("workflow_version")
        row["runs"] = f"{template['workflow_name']} {f'v{version}' if version else '(latest)'}"
    else:
        row["runs"] = f"task {template.get('task_name') or template.get('task_id')}"
    row["parameters"] = ", ".join(
        f"{p['name']}:{p.get('type', 'string')}{'*' if p.get('required') else ''}"
        for p in template.get("parameters") or []
    )
    return row


def do_template_create(ctx: Context, args: argparse.Namespace) -> None:
    if (args.workflow is None) == (args.task is None):
        raise CommandError("Give --workflow or --task.")
    body = _template_body(args)
    if "targets" not in body:
        raise CommandError(
            "No target: give --host, or filters (--region, --cell, --cloud, --label, --vars...)."
        )
    ctx.out.show(ctx.client.job_templates.create(**body))


def do_template_list(ctx: Context, args: argparse.Namespace) -> None:
    list_command(ctx, args, ctx.client.job_templates, {}, readable_template)


def do_template_show(ctx: Context, args: argparse.Namespace) -> None:
    templates = ctx.client.job_templates
    ctx.out.show(templates.get(templates.resolve_id(args.template)))


def do_template_update(ctx: Context, args: argparse.Namespace) -> None:
    templates = ctx.client.job_templates
    template_id = templates.resolve_id(args.template)
    body = _template_body(args)
    if args.workflow is not None:
        body["task"] = None  # switching to a workflow: sent as null, not left out
    elif args.task is not None:
        body["workflow"] = None
    if not body:
        raise CommandError("Nothing to change: give the options to update.")
    ctx.out.show(templates.update_fields(template_id, body))


def do_template_delete(ctx: Context, args: argparse.Namespace) -> None:
    templates = ctx.client.job_templates
    template_id = templates.resolve_id(args.template)
    templates.delete(template_id)
    ctx.out.note(f"Job template {args.template} deleted.")


def do_template_launch(ctx: Context, args: argparse.Namespace) -> int:
    params: dict[str, Any] = {}
    for item in args.param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CommandError(f"Bad --param {item!r}: expected KEY=VALUE.")
        params[key] = value
    templates = ctx.client.job_templates
    job = templates.launch(templates.resolve_id(args.template), params, name=args.job_name)
    if args.follow or args.wait:
        return _watch(ctx, job, args.follow)
    show_job(ctx, job)
    return 0


TRIGGER_FIELDS = ("id", "url", "created_by_name", "created_at", "description")


def do_template_trigger_create(ctx: Context, args: argparse.Namespace) -> None:
    templates = ctx.client.job_templates
    trigger = templates.create_trigger(templates.resolve_id(args.template), args.description)
    ctx.out.show(trigger)
    ctx.out.note(
        "Keep the secret now: it is not shown again. Call the URL with POST, the body "
        '{"params": {...}} signed: X-Craton-Timestamp and X-Craton-Signature: '
        "sha256=HMAC-SHA256(secret, '<timestamp>.<body>'), or with Authorization: Bearer <secret>."
    )


def do_template_trigger_list(ctx: Context, args: argparse.Namespace) -> None:
    templates = ctx.client.job_templates
    found = templates.triggers(templates.resolve_id(args.template))
    print_items(ctx, args, found)


def do_template_trigger_delete(ctx: Context, args: argparse.Namespace) -> None:
    templates = ctx.client.job_templates
    templates.delete_trigger(templates.resolve_id(args.template), args.trigger)
    ctx.out.note(f"Trigger {args.trigger} of job template {args.template} deleted.")


def _definition_options(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--workflow", metavar="WORKFLOW", help="workflow it runs (id or name)")
    what.add_argument("--task", metavar="TASK", help="single task it runs (id or name)")
    parser.add_argument(
        "--workflow-version", type=int, metavar="N", help="pin this version (default: latest)"
    )
    parser.add_argument("--description", help="what it is for")
    add_target_options(parser)
    parser.add_argument(
        "--var", action="append", metavar="KEY=VALUE", help="default job variable (JSON values)"
    )
    parser.add_argument(
        "--parameter",
        action="append",
        metavar="SPEC",
        help="a parameter: name=N,type=string|int|bool|choice,choices=a|b,required,default=V,"
        "description=TEXT, or a JSON object (repeatable; replaces them all on update)",
    )
    parser.add_argument("--concurrency", type=positive_int, metavar="N", help="hosts at a time")
    parser.add_argument(
        "--max-failures", type=int, metavar="N", help="failed hosts tolerated before stopping"
    )
    parser.add_argument(
        "--timeout", type=duration_seconds, metavar="DURATION", help="job timeout: 90s, 5m, 1h"
    )
    add_wave_options(parser)


def register(subparsers: argparse._SubParsersAction) -> None:
    template_help = "job template (id or name)"

    parser = add_command(
        subparsers, "template-create", do_template_create, "Save a launch as a job template."
    )
    parser.add_argument("name", metavar="NAME", help="template name")
    _definition_options(parser)

    parser = add_command(subparsers, "template-list", do_template_list, "List job templates.")
    add_list_options(parser, TEMPLATE_FIELDS)

    parser = add_command(subparsers, "template-show", do_template_show, "Show a job template.")
    parser.add_argument("template", metavar="TEMPLATE", help=template_help)

    parser = add_command(
        subparsers, "template-update", do_template_update, "Change a job template."
    )
    parser.add_argument("template", metavar="TEMPLATE", help=template_help)
    parser.add_argument("--name", dest="new_name", metavar="NAME", help="new name")
    _definition_options(parser)

    parser = add_command(
        subparsers, "template-delete", do_template_delete, "Delete a job template."
    )
    parser.add_argument("template", metavar="TEMPLATE", help=template_help)

    parser = add_command(
        subparsers,
        "template-launch",
        do_template_launch,
        "Launch a job from a template, filling in its parameters.",
    )
    parser.add_argument("template", metavar="TEMPLATE", help=template_help)
    parser.add_argument(
        "--param", action="append", metavar="KEY=VALUE", help="a parameter's value (repeatable)"
    )
    parser.add_argument("--job-name", metavar="NAME", help="job name (default: the template's)")
    parser.add_argument("--wait", action="store_true", help="show progress until the job finishes")
    parser.add_argument("--follow", action="store_true", help="stream the job's logs until it ends")

    parser = add_command(
        subparsers,
        "template-trigger-create",
        do_template_trigger_create,
        "Make a URL that launches the template when called with its secret.",
    )
    parser.add_argument("template", metavar="TEMPLATE", help=template_help)
    parser.add_argument("--description", help="what calls it")

    parser = add_command(
        subparsers,
        "template-trigger-list",
        do_template_trigger_list,
        "List a job template's triggers (never their secrets).",
    )
    parser.add_argument("template", metavar="TEMPLATE", help=template_help)
    add_fields_option(parser, TRIGGER_FIELDS)

    parser = add_command(
        subparsers, "template-trigger-delete", do_template_trigger_delete, "Delete a trigger."
    )
    parser.add_argument("template", metavar="TEMPLATE", help=template_help)
    parser.add_argument("trigger", metavar="TRIGGER", help="trigger id")
