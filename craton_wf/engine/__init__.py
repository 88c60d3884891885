"""The engine: everything a runner writes to the database.

Below the API's use cases (:mod:`craton_wf.services`, which may call in here)
and above the domain and storage; it never imports the services, the API or
the runner. Each call takes a session whose transaction the caller owns.

- :mod:`~craton_wf.engine.claims`: claim queued runs (or take over those of a
  runner whose lease expired), mark them started, give them back;
- :mod:`~craton_wf.engine.recording`: store a run's log lines and its outcome,
  and move the finished runs' jobs on;
- :mod:`~craton_wf.engine.scheduling`: the job's graph — what runs next, when
  a host or a job is done, cancelling;
- :mod:`~craton_wf.engine.leases`: the database clock, ``SKIP LOCKED`` claims,
  lease renewal and the fencing check every write makes;
- :mod:`~craton_wf.engine.builds`: claim a task's build, store its log, record
  its image;
- :mod:`~craton_wf.engine.sweeping`: which containers left behind may be
  removed;
- :mod:`~craton_wf.engine.runners`: the runner registry (registration,
  heartbeat, stop, who is alive);
- :mod:`~craton_wf.engine.task_env`: a run container's environment, limits
  and scoped token; :mod:`~craton_wf.engine.run_secrets` decrypts the
  secrets it names, :mod:`~craton_wf.engine.tokens` makes the token;
- :mod:`~craton_wf.engine.source_rules`: what the settings let a task's
  source be, for the builder and for the API's checks alike;
- :mod:`~craton_wf.engine.events`: the job's append-only event history.

One spelling per concept: a *build* is a task's build row
(:mod:`~craton_wf.engine.builds`), driven by the runner's
:mod:`~craton_wf.runner.build_execution` as a run is by
:mod:`~craton_wf.runner.execution`, through a *builder*
(:mod:`craton_wf.builders`, the only code that runs git and docker build);
*sweeping* is the verdict read here (:mod:`~craton_wf.engine.sweeping`), the
*sweeper* the runner's thread that removes containers
(:mod:`craton_wf.runner.sweeper`); a *runner* is a process
(:class:`craton_wf.runner.worker.Runner`), registered in
:mod:`~craton_wf.engine.runners`.

The engine's writes go through :mod:`~craton_wf.engine.writes`: a batch of
engine calls (one call, or all the runs a runner records in one transaction)
holds what it writes in two stores private to the engine,
:mod:`~craton_wf.engine._pending` (rows to insert, one statement per table)
and :mod:`~craton_wf.engine._staged` (column values of locked rows, one
update per table, written before the transaction's next statement), and
writes them at its end, before the caller commits.
"""
