"""The CronJob controller: schedules, concurrency policies, history limits, suspend,
starting deadlines and time zones.

Minute-level schedules would make real-time tests slow, so most tests run a cluster whose
controller manager is replaced by the same controllers built here, the CronJob controller
with a fake clock: a test moves the clock past a schedule time and pokes the controller.
Everything else (API, Job controller, scheduler, simulated nodes, kubectl) is real.  One
test runs on the ordinary cluster to show the wired-in controller at work.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from k3py.server.control import controller_factories
from k3py.server.controllers.base import Context, Controller, Informers
from k3py.server.controllers.cronjob import CronJobController
from tests.conftest import stop_server_thread
from tests.control.conftest import ClusterHandle, _ready_nodes, make_cluster

DURATION = "k3py.io/simulate-duration"
EXIT_CODE = "k3py.io/simulate-exit-code"


@dataclass
class FakeClock:
    now: float

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeCron:
    h: ClusterHandle
    clock: FakeClock
    ctrl: CronJobController

    def poke(self, ns: str, name: str, *, at: float) -> None:
        """Set the controller's clock to ``at`` and make it look at ``ns/name``."""
        self.clock.now = at
        self.h.loop.call_soon_threadsafe(self.ctrl.queue.add, f"{ns}/{name}")


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeCron]:
    h = make_cluster(tmp_path_factory.mktemp("k3py-cron"), disable_controller_manager=True)
    clock = FakeClock(time.time())
    controllers: list[Controller] = []
    informers: list[Informers] = []

    async def start() -> CronJobController:
        control = h.running.control
        inf = Informers(control.client)
        informers.append(inf)
        real = Context(
            client=control.client,
            informers=inf,
            recorder=control.sink.recorder("k3py-controller-manager"),
            timings=control.timings,
        )
        faked = Context(
            client=control.client,
            informers=inf,
            recorder=control.sink.recorder("k3py-controller-manager"),
            clock=clock,
        )
        cron = CronJobController(faked)
        cron.default_zone = dt.UTC
        controllers.append(cron)
        controllers.extend(f(real) for f in controller_factories() if f is not CronJobController)
        for c in controllers:
            c.setup()
        inf.start()
        await inf.wait_synced()
        for c in controllers:
            await c.started()
            c.start()
        return cron

    async def stop() -> None:
        for c in controllers:
            await c.stop()
        for inf in informers:
            await inf.stop()

    try:
        cron = h.call(start())
        h.wait_for(lambda: _ready_nodes(h) >= 3, timeout=30, what="3 Ready simulated nodes")
        yield FakeCron(h, clock, cron)
    finally:
        try:
            h.call(stop())
        finally:
            stop_server_thread(h)


@pytest.fixture
def fns(fake: FakeCron) -> Iterator[str]:
    name = f"cron-{next(_counter)}"
    fake.clock.now = time.time()  # each test starts at the real time
    fake.h.kubectl("create", "namespace", name)
    yield name
    fake.h.kubectl("delete", "namespace", name, "--wait=false", check=False)


_counter = iter(range(1, 1_000_000))


def cronjob(
    name: str,
    *,
    schedule: str = "*/1 * * * *",
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> str:
    body = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {
            "schedule": schedule,
            "jobTemplate": {
                "metadata": {"labels": {"app": name}, "annotations": {"team": "batch"}},
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "metadata": {"annotations": annotations or {}},
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [
                                {"name": "tick", "image": "busybox:1.36", "command": ["date"]}
                            ],
                        },
                    },
                },
            },
            **spec,
        },
    }
    return json.dumps(body)


def create(h: ClusterHandle, ns: str, manifest: str) -> dict[str, Any]:
    h.kubectl("apply", "-n", ns, "-f", "-", input=manifest)
    name = json.loads(manifest)["metadata"]["name"]
    return h.get_json("cronjob", name, "-n", ns)  # type: ignore[no-any-return]


def first_minute_after(obj: dict[str, Any]) -> float:
    created = dt.datetime.fromisoformat(obj["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    return (int(created.timestamp()) // 60 + 1) * 60.0


def jobs(h: ClusterHandle, ns: str) -> dict[str, dict[str, Any]]:
    return {j["metadata"]["name"]: j for j in h.get_json("jobs", "-n", ns)["items"]}


def events(h: ClusterHandle, ns: str, name: str) -> list[tuple[str, str]]:
    items = h.get_json("events", "-n", ns, "--field-selector", f"involvedObject.name={name}")[
        "items"
    ]
    return [(e["reason"], e["message"]) for e in items]


def wait_event(h: ClusterHandle, ns: str, name: str, reason: str) -> list[tuple[str, str]]:
    return h.wait_for(  # type: ignore[no-any-return]
        lambda: [e for e in events(h, ns, name) if e[0] == reason],
        timeout=30,
        what=f"{reason} event",
    )


def finished(job: dict[str, Any]) -> str:
    for c in job.get("status", {}).get("conditions", []):
        if c["type"] in ("Complete", "Failed") and c["status"] == "True":
            return str(c["type"])
    return ""


def rfc3339(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- with a fake clock -------------------------------------------------------------------------


def test_creates_job_at_schedule_time_and_tracks_it(fake: FakeCron, fns: str) -> None:
    h = fake.h
    cj = create(h, fns, cronjob("tick"))
    t1 = first_minute_after(cj)
    fake.poke(fns, "tick", at=t1 - 5)
    time.sleep(0.5)
    assert jobs(h, fns) == {}  # not due yet
    fake.poke(fns, "tick", at=t1 + 1)
    name = f"tick-{int(t1) // 60}"
    job = h.wait_for(lambda: jobs(h, fns).get(name), what=f"job {name}")
    m = job["metadata"]
    assert m["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == rfc3339(t1)
    assert m["annotations"]["team"] == "batch"
    assert m["labels"]["app"] == "tick"
    ref = m["ownerReferences"][0]
    assert (ref["kind"], ref["name"], ref["controller"]) == ("CronJob", "tick", True)
    wait_event(h, fns, "tick", "SuccessfulCreate")
    assert ("SuccessfulCreate", f"Created job {name}") in events(h, fns, "tick")
    # the Job runs to completion; the CronJob notices
    done = h.wait_for(
        lambda: (lambda s: s if "lastSuccessfulTime" in s else None)(
            h.get_json("cronjob", "tick", "-n", fns).get("status", {})
        ),
        what="lastSuccessfulTime",
    )
    assert done["lastScheduleTime"] == rfc3339(t1)
    assert "active" not in done
    wait_event(h, fns, "tick", "SawCompletedJob")
    assert ("SawCompletedJob", f"Saw completed job: {name}, condition: Complete") in events(
        h, fns, "tick"
    )
    # the same schedule time is not run twice
    fake.poke(fns, "tick", at=t1 + 30)
    time.sleep(0.5)
    assert list(jobs(h, fns)) == [name]
    table = h.kubectl("get", "cronjob", "tick", "-n", fns).stdout
    assert "*/1 * * * *" in table


def test_forbid_skips_while_a_job_runs(fake: FakeCron, fns: str) -> None:
    h = fake.h
    cj = create(h, fns, cronjob("solo", concurrencyPolicy="Forbid", annotations={DURATION: "1h"}))
    t1 = first_minute_after(cj)
    fake.poke(fns, "solo", at=t1 + 1)
    h.wait_for(
        lambda: h.get_json("cronjob", "solo", "-n", fns).get("status", {}).get("active"),
        what="active job",
    )
    fake.poke(fns, "solo", at=t1 + 61)
    wait_event(h, fns, "solo", "JobAlreadyActive")
    assert list(jobs(h, fns)) == [f"solo-{int(t1) // 60}"]


def test_replace_deletes_the_running_job(fake: FakeCron, fns: str) -> None:
    h = fake.h
    cj = create(h, fns, cronjob("swap", concurrencyPolicy="Replace", annotations={DURATION: "1h"}))
    t1 = first_minute_after(cj)
    first, second = f"swap-{int(t1) // 60}", f"swap-{int(t1) // 60 + 1}"
    fake.poke(fns, "swap", at=t1 + 1)
    h.wait_for(lambda: first in jobs(h, fns), what="first job")
    fake.poke(fns, "swap", at=t1 + 61)
    h.wait_for(lambda: list(jobs(h, fns)) == [second], timeout=30, what="second job only")
    status = h.get_json("cronjob", "swap", "-n", fns)["status"]
    assert [a["name"] for a in status["active"]] == [second]
    assert ("SuccessfulDelete", f"Deleted job {first}") in wait_event(
        h, fns, "swap", "SuccessfulDelete"
    )


def test_allow_runs_concurrently(fake: FakeCron, fns: str) -> None:
    h = fake.h
    cj = create(h, fns, cronjob("many", annotations={DURATION: "1h"}))
    t1 = first_minute_after(cj)
    fake.poke(fns, "many", at=t1 + 1)
    h.wait_for(lambda: len(jobs(h, fns)) == 1, what="first job")
    fake.poke(fns, "many", at=t1 + 61)
    h.wait_for(
        lambda: (
            len(h.get_json("cronjob", "many", "-n", fns).get("status", {}).get("active", [])) == 2
        ),
        what="2 active",
    )
    assert sorted(jobs(h, fns)) == [f"many-{int(t1) // 60}", f"many-{int(t1) // 60 + 1}"]


def test_history_limits(fake: FakeCron, fns: str) -> None:
    h = fake.h
    ok = create(h, fns, cronjob("keep", successfulJobsHistoryLimit=2))
    bad = create(h, fns, cronjob("fail", failedJobsHistoryLimit=1, annotations={EXIT_CODE: "1"}))
    t = max(first_minute_after(ok), first_minute_after(bad))
    for i in range(4):
        want = [f"keep-{int(t) // 60 + i}", f"fail-{int(t) // 60 + i}"]
        for name in ("keep", "fail"):
            fake.poke(fns, name, at=t + 60 * i + 1)

        def done(names: list[str] = want) -> bool:
            have = jobs(h, fns)
            return all(finished(have.get(n, {})) for n in names)

        h.wait_for(done, timeout=30, what=f"{want} finished")
    for name in ("keep", "fail"):
        fake.poke(fns, name, at=t + 200)

    def kept() -> tuple[list[str], list[str]]:
        names = sorted(jobs(h, fns))
        return [n for n in names if n.startswith("keep-")], [
            n for n in names if n.startswith("fail-")
        ]

    base = int(t) // 60
    h.wait_for(
        lambda: kept() == ([f"keep-{base + 2}", f"keep-{base + 3}"], [f"fail-{base + 3}"]),
        timeout=30,
        what="history trimmed",
    )
    assert ("SuccessfulDelete", f"Deleted job keep-{base}") in events(h, fns, "keep")
    status = h.get_json("cronjob", "fail", "-n", fns)["status"]
    assert "lastSuccessfulTime" not in status and "active" not in status


def test_suspend_and_missed_deadline(fake: FakeCron, fns: str) -> None:
    h = fake.h
    cj = create(h, fns, cronjob("pause", suspend=True))
    late = create(h, fns, cronjob("late", startingDeadlineSeconds=10))
    t1, t2 = first_minute_after(cj), first_minute_after(late)
    fake.poke(fns, "pause", at=t1 + 1)
    fake.poke(fns, "late", at=t2 + 30)  # 30 s late: past the 10 s deadline, skipped
    time.sleep(1)
    assert jobs(h, fns) == {}
    fake.poke(fns, "late", at=t2 + 65)  # the next run, within its deadline
    h.wait_for(lambda: f"late-{int(t2) // 60 + 1}" in jobs(h, fns), what="run within the deadline")
    assert not [n for n in jobs(h, fns) if n.startswith("pause-")]
    # resumed, the most recent time counts
    h.kubectl(
        "patch", "cronjob", "pause", "-n", fns, "--type=merge", "-p", '{"spec":{"suspend":false}}'
    )
    fake.poke(fns, "pause", at=t1 + 125)
    h.wait_for(lambda: f"pause-{int(t1) // 60 + 2}" in jobs(h, fns), what="job after resume")


def test_time_zone_and_many_missed(fake: FakeCron, fns: str) -> None:
    h = fake.h
    cj = create(h, fns, cronjob("tokyo", schedule="0 9 * * *", timeZone="Asia/Tokyo"))
    every = create(h, fns, cronjob("every"))
    created = first_minute_after(cj) - 60
    # the first 09:00 in Tokyo (00:00 UTC) after the creation
    nine = (int(created) // 86400 + 1) * 86400.0
    fake.poke(fns, "tokyo", at=nine + 5)
    name = f"tokyo-{int(nine) // 60}"
    job = h.wait_for(lambda: jobs(h, fns).get(name), what=f"job {name}")
    stamp = dt.datetime.fromtimestamp(nine, dt.timezone(dt.timedelta(hours=9))).strftime(
        "%Y-%m-%dT%H:%M:%S+09:00"
    )
    assert (
        job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == stamp
    )
    # 200 minutes without the controller: a warning, and only the latest run starts
    t1 = first_minute_after(every)
    fake.poke(fns, "every", at=t1 + 200 * 60 + 1)
    h.wait_for(lambda: f"every-{int(t1) // 60 + 200}" in jobs(h, fns), what="latest run")
    wait_event(h, fns, "every", "TooManyMissedTimes")
    assert [n for n in jobs(h, fns) if n.startswith("every-")] == [f"every-{int(t1) // 60 + 200}"]


def test_create_job_from_cronjob(fake: FakeCron, fns: str) -> None:
    h = fake.h
    create(h, fns, cronjob("manual", suspend=True, annotations={DURATION: "1h"}))
    h.kubectl("create", "job", "by-hand", "--from=cronjob/manual", "-n", fns)
    job = h.get_json("job", "by-hand", "-n", fns)
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert job["metadata"]["ownerReferences"][0]["name"] == "manual"
    h.wait_for(lambda: job_active(h, fns, "by-hand"), what="manual job running")
    wait_event(h, fns, "manual", "UnexpectedJob")
    assert (
        "UnexpectedJob",
        "Saw a job that the controller did not create or forgot: by-hand",
    ) in events(h, fns, "manual")


def job_active(h: ClusterHandle, ns: str, name: str) -> bool:
    return bool(h.get_json("job", name, "-n", ns).get("status", {}).get("active"))


# ---- the controller the server runs -------------------------------------------------------


def test_wired_controller_starts_a_due_run(cluster: ClusterHandle, ns: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=cronjob("live"))
    # pretend the last run was two minutes ago: the most recent minute is due now
    last = rfc3339((time.time() // 60 - 2) * 60)
    cluster.kubectl(
        "patch", "cronjob", "live", "-n", ns, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"lastScheduleTime": last}}),
    )  # fmt: skip
    job = cluster.wait_for(lambda: next(iter(jobs(cluster, ns).values()), None), what="a job")
    assert job["metadata"]["name"].startswith("live-")
    cluster.wait_for(
        lambda: finished(jobs(cluster, ns)[job["metadata"]["name"]]) == "Complete",
        what="job complete",
    )
    cluster.wait_for(
        lambda: (
            "lastSuccessfulTime" in cluster.get_json("cronjob", "live", "-n", ns).get("status", {})
        ),
        what="lastSuccessfulTime",
    )
