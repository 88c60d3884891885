"""Schedule commands: ``schedule-create``, ``-list``, ``-show``, ``-update``,
``-delete``, ``-pause``, ``-resume`` and ``schedule-fires``.

``schedule-list`` shows each schedule's next fire time in its own time zone;
``schedule-show`` the next few, in UTC as the server gives them.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ._common import (
    CommandError,
    Context,
    add_command,
    add_fields_option,
    add_list_options,
    list_command,
    print_items,
)

SCHEDULE_FIELDS = ("id", "name", "template", "cron", "timezone", "paused", "next_fire")
FIRE_FIELDS = ("fire_time", "outcome", "job_id", "message")


def _params(items: list[str] | None) -> dict[str, str] | None:
    if not items:
        return None
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CommandError(f"Bad --param {item!r}: expected KEY=VALUE.")
        params[key] = value  # as typed: the server reads it as the parameter's type
    return params


def _body(args: argparse.Namespace) -> dict[str, Any]:
    body = {
        "name": getattr(args, "new_name", None) or getattr(args, "name", None),
        "template": args.template,
        "cron": args.cron,
        "timezone": args.timezone,
        "params": _params(args.param),
        "missed_policy": args.missed,
        "overlap_policy": args.overlap,
        "paused": True if getattr(args, "paused", False) else None,
    }
    return {k: v for k, v in body.items() if v is not None}


def _local(when: str | None, timezone: str) -> str | None:
    if not when:
        return None
    try:
        return (
            datetime.fromisoformat(when)
            .astimezone(ZoneInfo(timezone))
            .strftime("%Y-%m-%d %H:%M %Z")
        )
    except (ValueError, KeyError):
        return when


def readable_schedule(schedule: Any) -> dict[str, Any]:
    row = dict(schedule)
    row["template"] = schedule.get("template_name") or schedule.get("template_id")
    row["next_fire"] = (
        "paused"
        if schedule.get("paused")
        else _local(schedule.get("next_fire_at"), schedule["timezone"])
    )
    return row


def do_schedule_create(ctx: Context, args: argparse.Namespace) -> None:
    ctx.out.show(ctx.client.schedules.create(**_body(args)))


def do_schedule_list(ctx: Context, args: argparse.Namespace) -> None:
    list_command(ctx, args, ctx.client.schedules, {}, readable_schedule)


def _resolved(ctx: Context, ref: str) -> Any:
    return ctx.client.schedules.resolve_id(ref)


def do_schedule_show(ctx: Context, args: argparse.Namespace) -> None:
    ctx.out.show(ctx.client.schedules.get(_resolved(ctx, args.schedule)))


def do_schedule_update(ctx: Context, args: argparse.Namespace) -> None:
    body = _body(args)
    if not body:
        raise CommandError("Nothing to change: give the options to update.")
    ctx.out.show(ctx.client.schedules.update(_resolved(ctx, args.schedule), **body))


def do_schedule_delete(ctx: Context, args: argparse.Namespace) -> None:
    ctx.client.schedules.delete(_resolved(ctx, args.schedule))
    ctx.out.note(f"Schedule {args.schedule} deleted.")


def do_schedule_pause(ctx: Context, args: argparse.Namespace) -> None:
    ctx.out.show(ctx.client.schedules.pause(_resolved(ctx, args.schedule)))


def do_schedule_resume(ctx: Context, args: argparse.Namespace) -> None:
    ctx.out.show(ctx.client.schedules.resume(_resolved(ctx, args.schedule)))


def do_schedule_fires(ctx: Context, args: argparse.Namespace) -> None:
    print_items(ctx, args, ctx.client.schedules.fires(_resolved(ctx, args.schedule)))


def _options(parser: argparse.ArgumentParser, creating: bool) -> None:
    parser.add_argument(
        "--template", required=creating, metavar="TEMPLATE", help="job template (id or name)"
    )
    parser.add_argument(
        "--cron", required=creating, metavar="EXPR", help="five fields, or @hourly, @daily, ..."
    )
    parser.add_argument("--timezone", metavar="ZONE", help="IANA time zone (default UTC)")
    parser.add_argument(
        "--param", action="append", metavar="KEY=VALUE", help="template parameter (repeatable)"
    )
    parser.add_argument(
        "--missed", choices=("skip", "run-once"), help="fires missed while nothing ran"
    )
    parser.add_argument(
        "--overlap",
        choices=("allow", "skip-if-running", "queue"),
        help="a fire while the last job still runs",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    schedule_help = "schedule (id or name)"

    parser = add_command(
        subparsers, "schedule-create", do_schedule_create, "Launch a job template on a cron."
    )
    parser.add_argument("name", metavar="NAME", help="schedule name")
    _options(parser, creating=True)
    parser.add_argument("--paused", action="store_true", help="create it paused")

    parser = add_command(
        subparsers, "schedule-list", do_schedule_list, "List schedules and their next fire."
    )
    add_list_options(parser, SCHEDULE_FIELDS)

    parser = add_command(subparsers, "schedule-show", do_schedule_show, "Show a schedule.")
    parser.add_argument("schedule", metavar="SCHEDULE", help=schedule_help)

    parser = add_command(subparsers, "schedule-update", do_schedule_update, "Change a schedule.")
    parser.add_argument("schedule", metavar="SCHEDULE", help=schedule_help)
    parser.add_argument("--name", dest="new_name", metavar="NAME", help="new name")
    _options(parser, creating=False)

    parser = add_command(subparsers, "schedule-delete", do_schedule_delete, "Delete a schedule.")
    parser.add_argument("schedule", metavar="SCHEDULE", help=schedule_help)

    parser = add_command(subparsers, "schedule-pause", do_schedule_pause, "Pause a schedule.")
    parser.add_argument("schedule", metavar="SCHEDULE", help=schedule_help)

    parser = add_command(
        subparsers,
        "schedule-resume",
        do_schedule_resume,
        "Resume a schedule from now (what came due while paused is not made up).",
    )
    parser.add_argument("schedule", metavar="SCHEDULE", help=schedule_help)

    parser = add_command(
        subparsers, "schedule-fires", do_schedule_fires, "List what a schedule's fires gave."
    )
    parser.add_argument("schedule", metavar="SCHEDULE", help=schedule_help)
    add_fields_option(parser, FIRE_FIELDS)
