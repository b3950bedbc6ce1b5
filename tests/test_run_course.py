"""tools/run_course.py: notebooks two at a time, each after the ones whose output it reads."""
import time

from tools import run_course

SECONDS = 0.3


def fake_run_04_fails(path):
    """Stands in for papermill: sleeps, then reports when it ended; notebook 04 fails."""
    time.sleep(SECONDS)
    return time.time(), "FAILED: boom" if path.name.startswith("04") else "ok"


def fake_ok(path):
    time.sleep(SECONDS)
    return time.time(), "ok"


def test_every_need_names_an_earlier_notebook():
    numbers = {p.name[:2] for p in run_course.notebooks()}
    assert set(run_course.NEEDS) <= numbers and all(n in numbers and n < k for k, v in run_course.NEEDS.items() for n in v)
    assert numbers - set(run_course.NEEDS) == {"00"}, "every notebook but 00 needs the fixture 00 builds"


def test_two_at_a_time_and_each_after_its_needs():
    started = []
    ends = {name[:2]: end for name, (end, status) in run_course.run_all(run_course.notebooks(), jobs=2, run=fake_ok,
                                                                       log=started.append).items()}
    starts = {k: end - SECONDS for k, end in ends.items()}
    for k, needs in run_course.NEEDS.items():
        assert all(ends[n] <= starts[k] + 0.05 for n in needs), (k, needs)
    overlapping = max(sum(starts[k] < t < ends[k] for k in ends) for t in [s + 0.01 for s in starts.values()])
    assert overlapping == 2
    assert started[:2] == ["▶ 00_setup.ipynb", "▶ 04_dataset.ipynb"], "04 goes first: 05 waits for it"


def test_one_at_a_time_runs_in_order():
    started = []
    run_course.run_all(run_course.notebooks(), jobs=1, run=fake_ok, log=started.append)
    assert started == [f"▶ {p.name}" for p in run_course.notebooks()]


def test_a_failed_notebook_stops_what_needs_it():
    results = run_course.run_all(run_course.notebooks(), jobs=2, run=fake_run_04_fails, log=lambda *_: None)
    status = {name[:2]: s for name, (_, s) in results.items()}
    assert status["04"] == "FAILED: boom"
    assert status["05"] == "not run: needs 04" and status["06"] == "not run: needs 05"
    assert status["08"] == "not run: needs 04, 07"
    assert status["01"] == status["02"] == status["03"] == "ok"


def test_polled_channel_finds_a_reply_whose_wake_up_never_comes(monkeypatch):
    """A wait with no timeout becomes timed polls, so a message the event loop was never told about is still
    read; a finite timeout still ends in ``Empty``."""
    import asyncio
    from queue import Empty

    from jupyter_client.channels import AsyncZMQSocketChannel

    from tools import kernel_client

    calls = []

    async def socket_poll(self, timeout=None):  # the message is queued, but an untimed wait is never woken
        calls.append(timeout)
        if timeout is None:
            await asyncio.Event().wait()
        await asyncio.sleep(min(timeout, 0.01))
        if self.queued and len(calls) >= 3:
            return {"msg_type": "execute_reply"}
        raise Empty

    monkeypatch.setattr(AsyncZMQSocketChannel, "get_msg", socket_poll)
    channel = object.__new__(kernel_client.PolledChannel)
    channel.queued = True
    assert asyncio.run(asyncio.wait_for(channel.get_msg(), 5)) == {"msg_type": "execute_reply"}
    assert calls == [kernel_client.POLL_S] * 3
    channel.queued, calls[:] = False, []
    start = time.monotonic()
    try:
        asyncio.run(channel.get_msg(timeout=0.05))
        raise AssertionError("an empty channel must raise Empty")
    except Empty:
        assert time.monotonic() - start < 0.5 and calls and all(t <= 0.05 for t in calls)


def test_papermill_runs_with_the_polled_kernel_client(monkeypatch, tmp_path):
    from tools import kernel_client

    seen = {}
    monkeypatch.setattr(run_course.pm, "execute_notebook", lambda *a, **kw: seen.update(kw))
    run_course.run_notebook(run_course.notebooks()[0], out_dir=tmp_path)
    manager = seen["kernel_manager_class"]()
    assert manager.client_factory is kernel_client.PolledKernelClient
    client = manager.client()
    assert client.shell_channel_class is client.iopub_channel_class is kernel_client.PolledChannel
