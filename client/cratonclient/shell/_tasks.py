"""Task commands: ``task-create``, ``-list``, ``-show``, ``-update``, ``-delete``,
``task-build``, ``task-build-list``, ``task-build-logs``.

``--location`` decides the source: an existing local directory is packed and
uploaded; anything else is taken as a git URL for the server to clone.
``--command`` is one string of shell words, split here with :func:`shlex.split`
so the server always receives a list.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
from collections.abc import Mapping
from typing import Any

from .._resource import Resource
from ._common import (
    CommandError,
    Context,
    add_command,
    add_fields_option,
    add_list_options,
    list_command,
    print_items,
)
from ._watch import wait_for_build

TASK_FIELDS = ("id", "name", "source_type", "status", "approval", "kind", "public", "commit")
#: What a READY task's approval means for running it, when it cannot run.
NOT_RUNNABLE = {"pending": "awaiting approval", "rejected": "rejected", "revoked": "revoked"}
BUILD_FIELDS = ("id", "number", "status", "ref", "commit", "image", "created_at", "finished_at")


def _split_command(text: str) -> list[str]:
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise CommandError(f"Bad --command {text!r}: {exc}.") from exc
    if not words:
        raise CommandError("--command is empty.")
    return words


def _spec(args: argparse.Namespace) -> dict[str, Any]:
    spec = {
        "name": getattr(args, "name", None),
        "ref": args.ref,
        "subdir": args.subdir,
        "dockerfile": args.dockerfile,
        "command": _split_command(args.command) if args.command is not None else None,
        "description": args.description,
        "kind": args.kind,
        "public": args.public,
        "restricted_to": args.restricted_to,
        "needs_network": args.needs_network,
        "secrets": args.secret,
        "resources": _resources(args),
        "placement": args.placement,
    }
    return {k: v for k, v in spec.items() if v is not None}


def _resources(args: argparse.Namespace) -> dict[str, Any] | None:
    asked = {"memory_mb": args.memory_mb, "cpus": args.cpus, "pids": args.pids}
    asked = {key: value for key, value in asked.items() if value is not None}
    return asked or None


_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:")  # git@host:owner/repo.git


def looks_like_git_url(location: str) -> bool:
    """``https://…``, ``file://…``, ``git@host:path``; anything else given to
    ``--location`` is a local path (a mistyped directory is not sent as a URL)."""
    return "://" in location or bool(_SCP_LIKE.match(location))


def _finish_build(
    ctx: Context, task: Resource, build_id: Any, wait: bool, verbose: bool = False
) -> int:
    """Show the task, after waiting for its build if asked; 1 if that build failed.

    A failed build's log is printed (unless ``verbose`` already showed it).
    """
    if not wait:
        ctx.out.show(task)
        return 0
    build, log = wait_for_build(ctx, task, build_id, verbose=verbose)
    ctx.out.show(ctx.client.tasks.get(task["id"]))
    if build.get("status") == "READY":
        return 0
    if log and not verbose:
        ctx.out.note(f"--- the build log ({len(log)} line(s)) ---")
        for line in log:
            ctx.out.note(line)
    reason = f": {build['error']}" if build.get("error") else ""
    ctx.out.error(f"Build of task {task['name']} failed{reason}")
    return 1


def do_task_create(ctx: Context, args: argparse.Namespace) -> int:
    spec = _spec(args)
    if os.path.isdir(args.location):
        task = ctx.client.tasks.create_from_directory(args.location, **spec)
    else:
        if not looks_like_git_url(args.location):
            raise CommandError(f"No such directory: {args.location}")
        task = ctx.client.tasks.create(location=args.location, **spec)
    build_id = (task.get("current_build") or {}).get("id", "latest")
    return _finish_build(ctx, task, build_id, args.wait, args.verbose)


def describe_approval(approval: Mapping[str, Any] | None) -> str | None:
    """``approved by alice (build 2)``, ``pending (public: needs a root user's approval)``."""
    if not approval:
        return None
    text = str(approval.get("status", ""))
    if approval.get("by"):
        text += f" by {approval['by']}"
    if approval.get("build") is not None:
        text += f" (build {approval['build']})"
    if approval.get("reason"):
        text += f": {approval['reason']}"
    return text


def readable_task(task: Mapping[str, Any]) -> dict[str, Any]:
    """The task as a table shows it: a READY build still awaiting approval does not
    read as runnable, and the approval is one line."""
    row = dict(task)
    approval = task.get("approval") or {}
    if task.get("status") == "READY" and approval.get("status") in NOT_RUNNABLE:
        row["status"] = f"READY ({NOT_RUNNABLE[approval['status']]})"
    if "approval" in task:
        row["approval"] = describe_approval(task.get("approval"))
    return row


def do_task_list(ctx: Context, args: argparse.Namespace) -> None:
    filters = {"name": args.name, "status": args.status}
    list_command(ctx, args, ctx.client.tasks, filters, readable_task)


def do_task_show(ctx: Context, args: argparse.Namespace) -> None:
    task = ctx.client.tasks.find(args.task)
    ctx.out.show(readable_task(task) if ctx.out.is_table else task)


def do_task_update(ctx: Context, args: argparse.Namespace) -> None:
    fields = _spec(args)
    if not fields:
        raise CommandError("Nothing to update: see task-update --help.")
    tasks = ctx.client.tasks
    ctx.out.show(tasks.update(tasks.resolve_id(args.task), **fields))


def do_task_delete(ctx: Context, args: argparse.Namespace) -> None:
    tasks = ctx.client.tasks
    task_id = tasks.resolve_id(args.task)
    tasks.delete(task_id)
    if ctx.out.is_table:
        ctx.out.text(f"Deleted task {task_id}.")


def do_task_build(ctx: Context, args: argparse.Namespace) -> int:
    tasks = ctx.client.tasks
    task = tasks.find(args.task)
    directory = None
    if task.get("source_type") == "upload":
        if args.location is not None:
            if not os.path.isdir(args.location):
                raise CommandError(f"No such directory: {args.location}")
            directory = args.location
        elif task.get("location") and os.path.isdir(task["location"]):
            directory = task["location"]
    elif args.location is not None:
        raise CommandError(
            f"Task {task['name']} builds from git; --location is only for uploaded tasks."
        )
    if directory is not None:
        ctx.out.note(f"Uploading {os.path.abspath(directory)}")
    build = tasks.build(task["id"], ref=args.ref, directory=directory)
    if not args.wait:
        ctx.out.show(build)
        return 0
    return _finish_build(ctx, task, build["id"], True, args.verbose)


def do_task_build_list(ctx: Context, args: argparse.Namespace) -> None:
    tasks = ctx.client.tasks
    print_items(ctx, args, tasks.builds(tasks.resolve_id(args.task)))


def do_task_build_logs(ctx: Context, args: argparse.Namespace) -> None:
    tasks = ctx.client.tasks
    task_id = tasks.resolve_id(args.task)
    for entry in tasks.build_logs(task_id, args.build, follow=args.follow):
        if not ctx.out.is_table:
            ctx.out.raw_line(entry)
        elif "line" in entry:
            ctx.out.text(str(entry["line"]))


def _metadata_options(parser: argparse.ArgumentParser, create: bool) -> None:
    parser.add_argument("--ref", help="git branch, tag or commit (git tasks)")
    parser.add_argument("--subdir", metavar="DIR", help="directory holding the Dockerfile")
    parser.add_argument(
        "--dockerfile", metavar="FILE", help="Dockerfile name (default: Dockerfile)"
    )
    parser.add_argument(
        "--command",
        required=create,
        metavar="CMD",
        help="the container's command, shell words (the payload is appended as last argument)",
    )
    parser.add_argument("--description", help="what the task does")
    parser.add_argument("--kind", choices=("audit", "remediation"), help="task kind")
    parser.add_argument(
        "--restricted-to",
        nargs="+",
        action="extend",
        metavar="ROLE",
        help="roles allowed to run the task",
    )
    parser.add_argument(
        "--secret",
        action="append",
        metavar="NAME",
        help="a project secret the task gets as an environment variable (repeatable)",
    )
    parser.add_argument(
        "--placement",
        action="append",
        metavar="CONSTRAINT",
        help="where it may run, e.g. node.labels.zone==a or node.role==manager (repeatable)",
    )
    parser.add_argument("--memory-mb", type=int, help="memory to ask for (within the maximum)")
    parser.add_argument("--cpus", type=float, help="CPUs to ask for (within the maximum)")
    parser.add_argument("--pids", type=int, help="processes to ask for (within the maximum)")
    if create:
        parser.add_argument("--public", action="store_true", default=None, help="visible to all")
        parser.add_argument(
            "--needs-network", action="store_true", default=None, help="the container needs network"
        )
    else:
        parser.add_argument("--public", action=argparse.BooleanOptionalAction, default=None)
        parser.add_argument("--needs-network", action=argparse.BooleanOptionalAction, default=None)


def do_task_approve(ctx: Context, args: argparse.Namespace) -> None:
    task = ctx.client.tasks.approve(
        args.task, build=args.build, digest=args.digest, reason=args.reason
    )
    ctx.out.show(task)


def do_task_reject(ctx: Context, args: argparse.Namespace) -> None:
    ctx.out.show(ctx.client.tasks.reject(args.task, build=args.build, reason=args.reason))


def do_task_revoke(ctx: Context, args: argparse.Namespace) -> None:
    ctx.out.show(ctx.client.tasks.revoke(args.task, build=args.build, reason=args.reason))


def _decision_options(parser: argparse.ArgumentParser, task_help: str) -> None:
    parser.add_argument("task", metavar="TASK", help=task_help)
    parser.add_argument("--build", type=int, help="build number (default: the READY build)")
    parser.add_argument("--reason", help="recorded with the decision")


def _wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait",
        action="store_true",
        help="wait for the build, showing its current step (the whole log if it fails)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="with --wait: print the whole build log as it comes"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    task_help = "task (id or name)"

    parser = add_command(
        subparsers,
        "task-approve",
        do_task_approve,
        "Approve a task's build by its digest (an admin other than its author).",
    )
    _decision_options(parser, task_help)
    parser.add_argument("--digest", help="the digest being approved (checked)")
    parser = add_command(subparsers, "task-reject", do_task_reject, "Reject a task's build.")
    _decision_options(parser, task_help)
    parser = add_command(
        subparsers, "task-revoke", do_task_revoke, "Revoke the approval of a task's build."
    )
    _decision_options(parser, task_help)

    parser = add_command(subparsers, "task-create", do_task_create, "Create a task and build it.")
    parser.add_argument("--name", required=True, help="task name")
    parser.add_argument(
        "--location",
        required=True,
        metavar="DIR_OR_GIT_URL",
        help="a local directory (uploaded) or a git URL (cloned by the server)",
    )
    _metadata_options(parser, create=True)
    _wait_options(parser)

    parser = add_command(subparsers, "task-list", do_task_list, "List tasks.")
    parser.add_argument("--name", help="only the task with this name")
    parser.add_argument("--status", help="only tasks with this status (e.g. READY)")
    add_list_options(parser, TASK_FIELDS)

    parser = add_command(subparsers, "task-show", do_task_show, "Show a task.")
    parser.add_argument("task", metavar="TASK", help=task_help)

    parser = add_command(subparsers, "task-update", do_task_update, "Update a task's metadata.")
    parser.add_argument("task", metavar="TASK", help=task_help)
    _metadata_options(parser, create=False)

    parser = add_command(subparsers, "task-delete", do_task_delete, "Delete a task.")
    parser.add_argument("task", metavar="TASK", help=task_help)

    parser = add_command(subparsers, "task-build", do_task_build, "Build a task again.")
    parser.add_argument("task", metavar="TASK", help=task_help)
    parser.add_argument("--ref", help="git ref to build (git tasks)")
    parser.add_argument(
        "--location",
        metavar="DIR",
        help="directory to upload (uploaded tasks; default: the task's location if it exists here)",
    )
    _wait_options(parser)

    parser = add_command(subparsers, "task-build-list", do_task_build_list, "List a task's builds.")
    parser.add_argument("task", metavar="TASK", help=task_help)
    add_fields_option(parser, BUILD_FIELDS)

    parser = add_command(
        subparsers, "task-build-logs", do_task_build_logs, "Show the log of a task's build."
    )
    parser.add_argument("task", metavar="TASK", help=task_help)
    parser.add_argument("--build", default="latest", metavar="N", help="build id (default: latest)")
    parser.add_argument("--follow", action="store_true", help="stream until the build finishes")
