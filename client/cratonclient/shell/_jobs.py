"""Job commands (``job-create``, ``-list``, ``-show``, ``-hosts``, ``-runs``,
``-logs``, ``-cancel``, ``-events``) and ``runner-list``.

``job-create`` sends workflow, task and hosts as given (ids or names): the
server resolves them, which saves one lookup per ``--host`` on a job over
hundreds of hosts. With ``--wait`` it shows the host counts until the job is
finished, with ``--follow`` the containers' log lines; either way it exits 1
if the job did not succeed.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from .._jobs import JOB_FINISHED
from ._common import (
    CommandError,
    Context,
    add_command,
    add_fields_option,
    add_list_options,
    check_vars_filters,
    duration_seconds,
    list_command,
    parse_key_values,
    positive_int,
    print_items,
)
from ._watch import elapsed_since, follow_job_logs, host_counts, print_job_log, wait_for_job
from ._workflows import steps_table

JOB_FIELDS = ("id", "name", "status", "workflow", "hosts", "created_by", "created_at", "duration")
JOB_HOST_FIELDS = ("host_id", "host_name", "status", "failed_step", "started_at", "finished_at")
RUN_FIELDS = (
    "id",
    "host_name",
    "step_name",
    "status",
    "attempt",
    "exit_code",
    "log_gap",  # its stored log misses lines the runtime rotated away
    "log_capped",  # its output reached the per-run cap
    "started_at",
    "finished_at",
)
EVENT_FIELDS = ("id", "created_at", "host_name", "kind", "message")
RUNNER_FIELDS = ("id", "name", "hostname", "executor", "alive", "heartbeat_at")


def target_filters(args: argparse.Namespace) -> dict[str, Any]:
    """The host filters given by :func:`add_target_options`' options (None left out)."""
    filters = {
        "region": args.region,
        "cell": args.cell,
        "cloud": args.cloud,
        "label": args.label,
        "device_type": args.device_type,
        "vars": check_vars_filters(args.vars),
    }
    return {k: v for k, v in filters.items() if v is not None}


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """The options naming a job's hosts: job-create's and a template's."""
    parser.add_argument(
        "--host", nargs="+", action="extend", metavar="HOST", help="target hosts (ids or names)"
    )
    parser.add_argument("--region", help="target the hosts of this region")
    parser.add_argument("--cell", help="target the hosts of this cell")
    parser.add_argument("--cloud", help="target the hosts of this cloud")
    parser.add_argument(
        "--label", nargs="+", action="extend", help="target hosts with these labels (all)"
    )
    parser.add_argument("--device-type", metavar="TYPE", help="target hosts of this device type")
    parser.add_argument(
        "--vars", nargs="+", action="extend", metavar="PATH:VALUE", help="target hosts by variable"
    )


def _job_body(args: argparse.Namespace) -> dict[str, Any]:
    filters = target_filters(args)
    if not args.host and not filters:
        raise CommandError(
            "No target: give --host, or filters (--region, --cell, --cloud, --label, --vars...)."
        )
    body = {
        "workflow": args.workflow,
        "task": args.task,
        "workflow_version": args.workflow_version,
        "name": args.name,
        "hosts": args.host,
        "filters": filters or None,
        "variables": parse_key_values(args.var, "--var") or None,
        "concurrency": args.concurrency,
        "max_failures": args.max_failures,
        "timeout": args.timeout,
        **wave_fields(args),
    }
    return {k: v for k, v in body.items() if v is not None}


def add_wave_options(parser: argparse.ArgumentParser) -> None:
    """The rollout options: job-create's and a template's (:func:`wave_fields` reads them)."""
    parser.add_argument(
        "--waves",
        metavar="SIZES",
        help="roll out in waves: sizes or percentages of the hosts left, e.g. 1,5,25%%,100%% "
        "(the last size applies to the rest)",
    )
    parser.add_argument(
        "--wave-pause", metavar="DURATION", help="wait between waves: seconds, or 30s, 10m, 2h"
    )
    parser.add_argument(
        "--wave-gate",
        choices=["approve"],
        help="approve: after each wave the job waits in PAUSED for job-resume",
    )


def wave_fields(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "waves": parse_waves(args.waves) if args.waves else None,
        "wave_pause": args.wave_pause,
        "wave_gate": args.wave_gate,
    }


def parse_waves(text: str) -> list[int | str]:
    """``1,5,25%,100%`` as the API takes it: counts as numbers, the rest as given
    (the server says which entry it refuses)."""
    entries = [entry.strip() for entry in text.split(",")]
    if not all(entries):
        raise CommandError(f"--waves {text!r}: an empty entry; give sizes like 1,5,25%,100%")
    return [int(entry) if entry.isdigit() else entry for entry in entries]


def describe_hosts(job: Mapping[str, Any]) -> str | None:
    """``3/5 SUCCEEDED, 1 FAILED, 1 RUNNING``: the hosts by status, the most common first."""
    counts = host_counts(job)
    if not counts:
        return None
    total = sum(counts.values())
    ranked = counts.most_common()
    first, n = ranked[0]
    rest = "".join(f", {count} {status}" for status, count in ranked[1:])
    return f"{n}/{total} {first}{rest}"


def readable_job(job: Mapping[str, Any]) -> dict[str, Any]:
    """A job list's row: what it runs, who launched it, its hosts and how long it took."""
    row = dict(job)
    if job.get("workflow_name"):
        version = f" v{job['workflow_version']}" if job.get("workflow_version") else ""
        row["workflow"] = f"{job['workflow_name']}{version}"
    elif job.get("task_name"):
        row["workflow"] = f"task {job['task_name']}"
    else:  # a server that does not name them
        row["workflow"] = (
            f"workflow {job['workflow_id']}"
            if job.get("workflow_id")
            else f"task {job.get('task_id')}"
        )
    row["created_by"] = job.get("created_by_name") or job.get("created_by")
    row["hosts"] = describe_hosts(job)
    row["duration"] = elapsed_since(job.get("started_at"), job.get("finished_at"))
    return row


def show_job(ctx: Context, job: Any) -> None:
    """The job's properties, and in a table a row per host."""
    nested = {}
    if ctx.out.is_table and isinstance(job.get("steps"), list):
        nested["steps"] = steps_table(ctx, job["steps"])
    ctx.out.show(job, nested)
    if ctx.out.is_table:
        hosts = ctx.client.jobs.hosts(job["id"])
        if hosts:
            rows = [[h.get(f) for f in JOB_HOST_FIELDS] for h in hosts]
            ctx.out.print_renderable(ctx.out.table(JOB_HOST_FIELDS, rows, title="Hosts"))


def _finished(ctx: Context, job: Any) -> int:
    show_job(ctx, job)
    if job.get("status") == "SUCCEEDED":
        return 0
    reason = f": {job['message']}" if job.get("message") else ""
    ctx.out.error(f"Job {job['id']} {job.get('status')}{reason}")
    return 1


def _watch(ctx: Context, job: Any, follow: bool) -> int:
    """Follow the job's logs or its progress until it finishes; Ctrl-C leaves it running."""
    job_id = job["id"]
    ctx.out.note(f"Job {job_id} {job.get('status', 'created')}.")
    try:
        finished = follow_job_logs(ctx, job_id) if follow else wait_for_job(ctx, job)
    except KeyboardInterrupt:
        _stopped_watching(ctx, job_id)
        return 130
    return _finished(ctx, finished)


def _stopped_watching(ctx: Context, job_id: Any) -> None:
    ctx.out.note(
        f"Stopped watching: job {job_id} keeps running. "
        f"Follow it with 'craton job-logs {job_id} --follow', "
        f"cancel it with 'craton job-cancel {job_id}'."
    )


def do_job_create(ctx: Context, args: argparse.Namespace) -> int:
    job = ctx.client.jobs.create(**_job_body(args))
    if args.follow or args.wait:
        return _watch(ctx, job, args.follow)
    show_job(ctx, job)
    return 0


def do_job_list(ctx: Context, args: argparse.Namespace) -> None:
    client = ctx.client
    filters = {
        "status": args.status,
        "workflow_id": client.workflows.resolve_id(args.workflow) if args.workflow else None,
        "task_id": client.tasks.resolve_id(args.task) if args.task else None,
    }
    list_command(ctx, args, client.jobs, filters, readable_job)


def do_job_show(ctx: Context, args: argparse.Namespace) -> None:
    jobs = ctx.client.jobs
    show_job(ctx, jobs.get(jobs.resolve_id(args.job)))


def do_job_hosts(ctx: Context, args: argparse.Namespace) -> None:
    jobs = ctx.client.jobs
    print_items(ctx, args, jobs.hosts(jobs.resolve_id(args.job)))


def do_job_runs(ctx: Context, args: argparse.Namespace) -> None:
    jobs = ctx.client.jobs
    print_items(ctx, args, jobs.runs(jobs.resolve_id(args.job), host=args.host, step=args.step))


def do_job_logs(ctx: Context, args: argparse.Namespace) -> int | None:
    jobs = ctx.client.jobs
    job_id = jobs.resolve_id(args.job)
    if args.follow:
        try:
            finished = follow_job_logs(ctx, job_id, host=args.host, step=args.step)
        except KeyboardInterrupt:
            _stopped_watching(ctx, job_id)
            return 130
        # As job-create --follow: the exit status says how the job ended.
        if finished.get("status") != "SUCCEEDED":
            reason = f": {finished['message']}" if finished.get("message") else ""
            ctx.out.error(f"Job {finished['id']} {finished.get('status')}{reason}")
            return 1
        return None
    for entry in jobs.logs(job_id, host=args.host, step=args.step):
        print_job_log(ctx, entry)
    return None


def do_job_cancel(ctx: Context, args: argparse.Namespace) -> None:
    jobs = ctx.client.jobs
    job = jobs.get(jobs.resolve_id(args.job))
    if job.get("status") in JOB_FINISHED:
        ctx.out.note(f"Job {job['id']} already finished ({job['status']}): nothing to cancel.")
        ctx.out.show(job)
        return
    ctx.out.show(jobs.cancel(job["id"]))


def do_job_resume(ctx: Context, args: argparse.Namespace) -> int:
    jobs = ctx.client.jobs
    job = jobs.resume(jobs.resolve_id(args.job))
    if args.follow or args.wait:
        return _watch(ctx, job, args.follow)
    show_job(ctx, job)
    return 0


def do_job_abort(ctx: Context, args: argparse.Namespace) -> None:
    jobs = ctx.client.jobs
    ctx.out.show(jobs.abort(jobs.resolve_id(args.job)))


def do_job_retry(ctx: Context, args: argparse.Namespace) -> int:
    jobs = ctx.client.jobs
    job = jobs.retry(jobs.resolve_id(args.job), failed_hosts=args.failed_hosts)
    if args.follow or args.wait:
        return _watch(ctx, job, args.follow)
    show_job(ctx, job)
    return 0


def do_job_events(ctx: Context, args: argparse.Namespace) -> None:
    jobs = ctx.client.jobs
    print_items(ctx, args, jobs.events(jobs.resolve_id(args.job)))


def do_runner_list(ctx: Context, args: argparse.Namespace) -> None:
    alive = {True: "true", False: "false", None: None}[args.alive]
    list_command(ctx, args, ctx.client.runners, {"alive": alive})


def _job_create_options(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--workflow", metavar="WORKFLOW", help="workflow to run (id or name)")
    what.add_argument("--task", metavar="TASK", help="single task to run (id or name)")
    parser.add_argument("--workflow-version", type=int, metavar="N", help="workflow version")
    parser.add_argument("--name", help="job name")
    add_target_options(parser)
    parser.add_argument(
        "--var", action="append", metavar="KEY=VALUE", help="job variable (repeatable; JSON values)"
    )
    parser.add_argument("--concurrency", type=positive_int, metavar="N", help="hosts at a time")
    parser.add_argument(
        "--max-failures", type=int, metavar="N", help="failed hosts tolerated before stopping"
    )
    parser.add_argument(
        "--timeout",
        type=duration_seconds,
        metavar="DURATION",
        help="job timeout: seconds, or 90s, 5m, 1h, 1h30m",
    )
    add_wave_options(parser)
    parser.add_argument("--wait", action="store_true", help="show progress until the job finishes")
    parser.add_argument("--follow", action="store_true", help="stream the job's logs until it ends")


def register(subparsers: argparse._SubParsersAction) -> None:
    job_help = "job (id or name)"

    parser = add_command(
        subparsers, "job-create", do_job_create, "Run a workflow or task on hosts."
    )
    _job_create_options(parser)

    parser = add_command(subparsers, "job-list", do_job_list, "List jobs.")
    parser.add_argument("--status", help="only jobs in this status")
    parser.add_argument("--workflow", help="only jobs of this workflow (id or name)")
    parser.add_argument("--task", help="only jobs of this task (id or name)")
    add_list_options(parser, JOB_FIELDS)

    parser = add_command(subparsers, "job-show", do_job_show, "Show a job and its hosts.")
    parser.add_argument("job", metavar="JOB", help=job_help)

    parser = add_command(subparsers, "job-hosts", do_job_hosts, "List a job's hosts.")
    parser.add_argument("job", metavar="JOB", help=job_help)
    add_fields_option(parser, JOB_HOST_FIELDS)

    parser = add_command(subparsers, "job-runs", do_job_runs, "List a job's runs.")
    parser.add_argument("job", metavar="JOB", help=job_help)
    parser.add_argument("--host", help="only runs on this host (id or name)")
    parser.add_argument("--step", help="only runs of this step")
    add_fields_option(parser, RUN_FIELDS)

    parser = add_command(subparsers, "job-logs", do_job_logs, "Show a job's container logs.")
    parser.add_argument("job", metavar="JOB", help=job_help)
    parser.add_argument("--host", help="only this host (id or name)")
    parser.add_argument("--step", help="only this step")
    parser.add_argument("--follow", action="store_true", help="stream until the job finishes")

    parser = add_command(subparsers, "job-cancel", do_job_cancel, "Cancel a job.")
    parser.add_argument("job", metavar="JOB", help=job_help)

    parser = add_command(
        subparsers, "job-resume", do_job_resume, "Start the next wave of a job paused at its gate."
    )
    parser.add_argument("job", metavar="JOB", help=job_help)
    parser.add_argument("--wait", action="store_true", help="show progress until it finishes")
    parser.add_argument("--follow", action="store_true", help="stream until the job finishes")

    parser = add_command(
        subparsers, "job-abort", do_job_abort, "End a running or paused job; hosts left never run."
    )
    parser.add_argument("job", metavar="JOB", help=job_help)

    parser = add_command(
        subparsers,
        "job-retry",
        do_job_retry,
        "Run a finished job again as a new job (all hosts, or only the failed ones).",
    )
    parser.add_argument("job", metavar="JOB", help=job_help)
    parser.add_argument("--failed-hosts", action="store_true", help="only the hosts that failed")
    parser.add_argument("--wait", action="store_true", help="show progress until it finishes")
    parser.add_argument("--follow", action="store_true", help="stream until the job finishes")

    parser = add_command(subparsers, "job-events", do_job_events, "List a job's events.")
    parser.add_argument("job", metavar="JOB", help=job_help)
    add_fields_option(parser, EVENT_FIELDS)

    parser = add_command(subparsers, "runner-list", do_runner_list, "List runners.")
    add_list_options(parser, RUNNER_FIELDS)
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--alive", action="store_const", const=True, help="only the runners alive now"
    )
    which.add_argument(
        "--gone",
        dest="alive",
        action="store_const",
        const=False,
        help="only the runners stopped, or silent for longer than a lease",
    )
