"""Continuous threat simulation: a rotating selection of scenarios per cycle, on a shadow twin.

``run_cycle`` picks the next scenarios in turn (``rotate``), runs them with ``run_campaign`` (the
runner's public entry point: fresh in-process twin batches, never the plant's twin or its OPC UA
server), scores the resilience over the latest result of every scenario, logs the cycle as an
``audit`` leaf (with the SHA-256 of its stored result) and any Finding as a ``finding`` leaf, then
stores the result in ``D/campaign-schedule.db`` (``ScheduleStore``). ``CampaignScheduler`` runs
cycles at a set interval on a background thread inside ``aseptic serve``; each cycle's simulation
runs in a child process of its own, at a lower CPU priority, so serving is never blocked.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from aseptic.campaign._resilience import (
    newly_missed,
    resilience_findings,
    rotate,
    score_results,
)
from aseptic.campaign._runner import not_executable_reason, run_campaign
from aseptic.campaign._scenario import Scenario
from aseptic.campaign._schedule_store import CycleRecord, ScheduleStore, result_digest
from aseptic.clock import Clock, format_rfc3339
from aseptic.errors import AsepticError, BackendError, ConfigError

__all__ = [
    "SCHEDULER_IDENTITY",
    "CampaignScheduler",
    "SchedulePlan",
    "run_cycle",
    "run_shadow_campaign",
    "schedulable",
]

SCHEDULER_IDENTITY = "campaign-scheduler"
# Entries sinks: record a canonical-JSON entry in the ledger and return once it is durable.
EntrySink = Callable[[Mapping[str, Any]], object]
CampaignCall = Callable[[Sequence[Scenario], "SchedulePlan"], dict[str, Any]]
_NICE = 10  # the simulation yields the CPU to serving


@dataclass(frozen=True)
class SchedulePlan:
    """How much one cycle runs (``[campaign_schedule]`` in the settings)."""

    scenarios_per_cycle: int = 3
    batches: int = 2
    train_batches: int = 5
    workers: int = 1
    train_duration_h: float | None = None
    score_drop: float = 5.0


def schedulable(library: Sequence[Scenario], only: Sequence[str] = ()) -> list[Scenario]:
    """The scenarios a schedule rotates over: ``only`` (or the library), executable on the twin, by id.

    Raises:
        ConfigError: an id in ``only`` is not in the library, or nothing is left to run.
    """
    by_id = {s.id: s for s in library}
    unknown = sorted(set(only) - set(by_id))
    if unknown:
        raise ConfigError(
            f"[campaign_schedule].scenarios: unknown scenario id(s) {', '.join(unknown)}",
            hint="`aseptic campaign list` shows the library",
        )
    chosen = [by_id[i] for i in only] if only else list(library)
    runnable = sorted(
        (s for s in chosen if all(not_executable_reason(step) is None for step in s.steps)),
        key=lambda s: s.id,
    )
    if not runnable:
        raise ConfigError(
            "the campaign schedule has no scenario the twin can execute",
            hint="list sensor or setpoint scenarios in [campaign_schedule].scenarios",
        )
    return runnable


def run_shadow_campaign(scenarios: Sequence[Scenario], plan: SchedulePlan) -> dict[str, Any]:
    """``run_campaign`` on fresh twin batches with the plan's sizes (the campaign.json content)."""
    return run_campaign(
        scenarios,
        batches=plan.batches,
        train_batches=plan.train_batches,
        workers=plan.workers,
        train_duration_h=plan.train_duration_h,
    )


def run_cycle(
    data_dir: Path,
    library: Sequence[Scenario],
    plan: SchedulePlan,
    *,
    audit: EntrySink,
    findings: EntrySink,
    clock: Clock,
    campaign: CampaignCall = run_shadow_campaign,
) -> CycleRecord:
    """Run one cycle: the next scenarios in turn, scored, logged, stored; return what was stored.

    Raises:
        ConfigError: ``library`` is empty.
        BackendError: the schedule store or the ledger failed (nothing is stored then).
    """
    if not library:
        raise ConfigError("the campaign schedule has no scenario to run")
    by_id = {s.id: s for s in library}
    with ScheduleStore.open(data_dir) as store:
        cycle = store.last_cycle() + 1
        chosen, cursor = rotate(sorted(by_id), store.next_cursor(), plan.scenarios_per_cycle)
        previous = store.latest_results()
        before = store.last_score()
    started = clock.now()
    result = campaign([by_id[i] for i in chosen], plan)
    finished = clock.now()
    rows = [row for row in result.get("scenarios", []) if isinstance(row, dict) and "id" in row]
    latest = {**previous, **{str(row["id"]): row for row in rows}}
    after = score_results(latest)
    missed = newly_missed(previous, rows)
    raised = resilience_findings(
        cycle=cycle, before=before, after=after, missed=missed, score_drop=plan.score_drop, time=finished
    )
    digest = result_digest(result)
    # The ledger first: a stored result that no ledger entry accounts for is not evidence.
    audit(
        {
            "entry": "campaign_cycle",
            "who": SCHEDULER_IDENTITY,
            "record": f"campaign:cycle-{cycle}",
            "change": "run",
            "cycle": cycle,
            "scenarios": chosen,
            "result_sha256": digest,
            "resilience": after.to_json(),
            "newly_missed": [f"{m.scenario}:{m.technique}" for m in missed],
            "started": format_rfc3339(started),
            "time": format_rfc3339(finished),
        }
    )
    for payload in raised:
        findings(payload)
    record = CycleRecord(cycle, started, finished, tuple(chosen), cursor, digest, after, len(raised))
    with ScheduleStore.open(data_dir) as store:
        store.add_cycle(record, result, rows)
    return record


def _child(conn: Connection, scenarios: Sequence[Scenario], plan: SchedulePlan) -> None:
    # A session of its own: stopping the scheduler ends this process and its workers together.
    os.setsid()
    os.nice(_NICE)
    try:
        conn.send(("ok", run_shadow_campaign(scenarios, plan)))
    except AsepticError as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc.message}"))
    except Exception as exc:  # reported to the parent, which logs it and goes on
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


class CampaignScheduler:
    """Cycles every ``interval_s`` seconds on a background thread (the first one after ``first_delay_s``).

    A failed cycle is reported by ``status()`` and retried at the next interval; it stores nothing.
    """

    def __init__(
        self,
        data_dir: Path,
        library: Sequence[Scenario],
        plan: SchedulePlan,
        *,
        interval_s: float,
        audit: EntrySink,
        findings: EntrySink,
        clock: Clock,
        first_delay_s: float | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ConfigError(f"campaign schedule interval {interval_s} s must be positive")
        self.data_dir = data_dir
        self.library = tuple(library)
        self.plan = plan
        self.interval_s = interval_s
        self.first_delay_s = interval_s if first_delay_s is None else first_delay_s
        self._audit = audit
        self._findings = findings
        self._clock = clock
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._child: multiprocessing.process.BaseProcess | None = None
        self._thread: threading.Thread | None = None
        self.cycles_run = 0
        self.last_error: str | None = None
        self.last_cycle: CycleRecord | None = None

    def start(self) -> None:
        """Start the background thread (once)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="campaign-schedule", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop: end a running cycle's simulation (nothing of it is stored) and join the thread."""
        self._stop.set()
        with self._lock:
            child = self._child
        if child is not None and child.pid is not None and child.is_alive():
            try:
                os.killpg(child.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        if self._thread is not None:
            self._thread.join(timeout_s)

    def status(self) -> dict[str, Any]:
        """Whether it runs, how many cycles it ran, the last cycle and the last error."""
        last = self.last_cycle
        return {
            "running": self._thread is not None and self._thread.is_alive(),
            "interval_s": self.interval_s,
            "cycles_run": self.cycles_run,
            "last_cycle": None if last is None else last.cycle,
            "last_error": self.last_error,
        }

    def _loop(self) -> None:
        delay = self.first_delay_s
        while not self._stop.wait(delay):
            delay = self.interval_s
            try:
                record = run_cycle(
                    self.data_dir,
                    self.library,
                    self.plan,
                    audit=self._audit,
                    findings=self._findings,
                    clock=self._clock,
                    campaign=self._in_child,
                )
            except AsepticError as exc:
                self.last_error = f"{format_rfc3339(self._clock.now())} {type(exc).__name__}: {exc.message}"
                continue
            except Exception as exc:  # a bug must not end the schedule silently: reported, retried
                self.last_error = f"{format_rfc3339(self._clock.now())} {type(exc).__name__}: {exc}"
                continue
            self.cycles_run += 1
            self.last_cycle = record
            self.last_error = None

    def _in_child(self, scenarios: Sequence[Scenario], plan: SchedulePlan) -> dict[str, Any]:
        # spawn, not fork: the server process has threads (fork would copy their locks mid-use).
        context = multiprocessing.get_context("spawn")
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(target=_child, args=(sender, list(scenarios), plan), name="campaign-cycle")
        with self._lock:
            if self._stop.is_set():
                raise BackendError("the campaign scheduler is stopping")
            child.start()
            self._child = child
        sender.close()
        try:
            status, value = receiver.recv()
        except EOFError:
            raise BackendError(
                f"the campaign cycle's process ended without a result (exit code {child.exitcode})"
            ) from None
        finally:
            receiver.close()
            child.join()
            with self._lock:
                self._child = None
        if status != "ok":
            raise BackendError(f"the campaign cycle failed: {value}")
        result: dict[str, Any] = value
        return result
