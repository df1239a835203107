"""Advanced Profile RPC with Autobahn|Python: progressive call results, call
canceling, call timeout, pattern-based and shared registrations, caller
identification (WAMP-FEATURES.md 4.1-4.8).

What Autobahn|Python 26.10.2 puts on the wire (README, "Advanced RPC"):
  * cancelling the future returned by call() sends CANCEL with EMPTY Options
    (no mode); the future is cancelled locally at once, and the router's
    ERROR is then swallowed. To see the router's answer, and to pick a mode,
    tests send CANCEL themselves (send_cancel) and await the original future.
  * CallOptions(timeout=N) sends CALL.Options.timeout = N unchanged (an int;
    Autobahn means seconds, the spec milliseconds).
  * there is no disclose_me: call_with_options() adds it to CALL.Options.
  * an interrupted (cancelled) endpoint coroutine is answered with ERROR
    wamp.error.runtime_error unless the endpoint raises something else.

Cheap scenarios run on all 6 transport x serializer combinations; the ones
that wait (cancel modes, timeout) on WebSocket/json and RawSocket/msgpack.
"""

import asyncio

import pytest
from autobahn.wamp import message
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, CallResult, RegisterOptions

from wampinterop import (
    IS_CROSSBAR,
    MAX_SAFE_INT,
    Inbox,
    assert_same,
    call_with_options,
    request_id_of,
    send_cancel,
    uri,
    within,
)

CANCELED = "wamp.error.canceled"
TIMEOUT = "wamp.error.timeout"
NO_SUCH_PROCEDURE = "wamp.error.no_such_procedure"
PROCEDURE_ALREADY_EXISTS = "wamp.error.procedure_already_exists"
POLICY_CONFLICT = "wamp.error.procedure_exists_with_different_invocation_policy"

FEW = [("websocket", "json"), ("rawsocket", "msgpack")]
FEW_IDS = [f"{t}-{s}" for t, s in FEW]

WITH_DETAILS = RegisterOptions(details_arg="details")


async def expect_error(aw, what: str, timeout=None) -> ApplicationError:
    try:
        res = await (within(aw, what) if timeout is None else within(aw, what, timeout))
    except ApplicationError as e:
        return e
    raise AssertionError(f"{what}: expected an ERROR, got result {res!r}")


def is_interrupt(msg) -> bool:
    return isinstance(msg, message.Interrupt)


def invocation_ids(session) -> list[int]:
    return [m.request for m in session.received if isinstance(m, message.Invocation)]


def results(session, request_id) -> list:
    return [m for m in session.received if isinstance(m, message.Result) and m.request == request_id]


class Hanging:
    """Endpoint that never answers by itself and records what happens to it.

    `reply_after_interrupt`: seconds to wait after being interrupted before
    answering with ERROR wamp.error.canceled (None: let the CancelledError
    out, as a plain Autobahn endpoint would).
    """

    def __init__(self, reply_after_interrupt=None):
        self.invoked = asyncio.Event()
        self.interrupted = asyncio.Event()
        self.replied = asyncio.Event()
        self.release = asyncio.Event()
        self.reply_after_interrupt = reply_after_interrupt
        self.calls = 0

    async def __call__(self, *args, **kwargs):
        self.calls += 1
        self.invoked.set()
        try:
            await asyncio.wait_for(self.release.wait(), 30)
        except asyncio.CancelledError:
            self.interrupted.set()
            if self.reply_after_interrupt is None:
                raise
            await asyncio.sleep(self.reply_after_interrupt)
            self.replied.set()
            raise ApplicationError(CANCELED, "interrupted by the test") from None
        self.replied.set()
        return "released"


# ---------------------------------------------------------------------------
# 4.1 progressive call results


async def test_progressive_results(peers, combo):
    callee = await peers.connect(*combo)
    caller = await peers.connect(*combo)
    proc = uri("adv.progress")
    saw_receive_progress = Inbox()

    def streamer(n, details):
        saw_receive_progress(details.progress is not None)
        if details.progress is not None:
            for i in range(n):
                if i == 1:
                    details.progress()  # an empty progressive result is allowed
                else:
                    details.progress(i, f"step {i} ✓", part={"i": i, "big": MAX_SAFE_INT, "f": 0.5})
        return CallResult("done", n, total=n)

    await within(callee.register(streamer, proc, options=WITH_DETAILS), "REGISTERED")

    progress = []

    def on_progress(*args, **kwargs):
        progress.append((list(args), dict(kwargs)))

    fut = caller.call(proc, 4, options=CallOptions(on_progress=on_progress))
    request_id = request_id_of(caller, fut)
    res = await within(fut, "final RESULT")
    [(seen,), _] = await saw_receive_progress.get("INVOCATION")
    assert seen is True, "INVOCATION.Details.receive_progress did not reach the callee"

    expected = [
        ([0, "step 0 ✓"], {"part": {"i": 0, "big": MAX_SAFE_INT, "f": 0.5}}),
        ([], {}),
        ([2, "step 2 ✓"], {"part": {"i": 2, "big": MAX_SAFE_INT, "f": 0.5}}),
        ([3, "step 3 ✓"], {"part": {"i": 3, "big": MAX_SAFE_INT, "f": 0.5}}),
    ]
    assert len(progress) == len(expected), f"progressive results: {progress!r}"
    for i, ((args, kwargs), (eargs, ekwargs)) in enumerate(zip(progress, expected)):
        assert_same(args, eargs, f"progress[{i}] args")
        assert_same(kwargs, ekwargs, f"progress[{i}] kwargs")
    assert isinstance(res, CallResult)
    assert_same(list(res.results), ["done", 4])
    assert_same(dict(res.kwresults), {"total": 4})
    # on the wire: 4 x RESULT{progress: true}, then exactly one final RESULT, same request ID
    flags = [bool(m.progress) for m in results(caller, request_id)]
    assert flags == [True, True, True, True, False], f"RESULT.progress flags {flags}"

    # without receive_progress the callee gets no progress callback and the
    # caller exactly one RESULT
    fut = caller.call(proc, 2)
    request_id = request_id_of(caller, fut)
    res = await within(fut, "RESULT")
    [(seen,), _] = await saw_receive_progress.get("INVOCATION")
    assert seen is False, "receive_progress reached the callee although the caller did not ask"
    assert_same(list(res.results), ["done", 2])
    assert [bool(m.progress) for m in results(caller, request_id)] == [False]


async def test_progressive_results_then_error(peers, combo):
    """A progressive call may end with an ERROR instead of a final RESULT."""
    callee = await peers.connect(*combo)
    caller = await peers.connect(*combo)
    proc = uri("adv.progress_fails")

    def streamer(details):
        details.progress("half way")
        raise ApplicationError("junction.interop.error.stream_broke", "after one", code=7)

    await within(callee.register(streamer, proc, options=WITH_DETAILS), "REGISTERED")
    progress = Inbox()
    err = await expect_error(caller.call(proc, options=CallOptions(on_progress=progress)), "ERROR")
    assert err.error == "junction.interop.error.stream_broke"
    assert_same(list(err.args), ["after one"])
    assert_same(err.kwargs, {"code": 7})
    assert_same(await progress.get("progressive RESULT"), (["half way"], {}))
    await progress.assert_empty("progressive RESULT")


async def test_caller_leaves_during_progressive_call(peers, combo):
    """Caller goes away mid-stream -> the callee gets INTERRUPT (killnowait)."""
    callee = await peers.connect(*combo)
    caller = await peers.connect(*combo)
    proc = uri("adv.progress_orphaned")
    interrupted = asyncio.Event()
    first_sent = asyncio.Event()

    async def streamer(details):
        try:
            details.progress("first")
            first_sent.set()
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            interrupted.set()
            raise

    await within(callee.register(streamer, proc, options=WITH_DETAILS), "REGISTERED")
    progress = Inbox()
    call = asyncio.ensure_future(caller.call(proc, options=CallOptions(on_progress=progress)))
    assert_same(await progress.get("progressive RESULT"), (["first"], {}))
    caller.drop_transport()
    await within(interrupted.wait(), "INTERRUPT at the callee (endpoint cancelled)")
    intr = await callee.wait_received(is_interrupt, "INTERRUPT")
    assert intr.request == invocation_ids(callee)[-1]
    assert intr.mode == message.Cancel.KILLNOWAIT
    await asyncio.gather(call, return_exceptions=True)


# ---------------------------------------------------------------------------
# 4.4 call canceling


async def test_cancel_autobahn_default(peers, combo):
    """Autobahn's own cancel (CANCEL without mode): the router answers
    wamp.error.canceled and interrupts the endpoint."""
    callee = await peers.connect(*combo)
    caller = await peers.connect(*combo)
    proc = uri("adv.cancel")
    endpoint = Hanging()
    await within(callee.register(endpoint, proc), "REGISTERED")

    fut = caller.call(proc, "x")
    request_id = request_id_of(caller, fut)
    await within(endpoint.invoked.wait(), "INVOCATION")
    fut.cancel()  # Autobahn sends [CANCEL, request, {}]

    err = await caller.wait_received(
        lambda m: isinstance(m, message.Error) and m.request == request_id, "ERROR for the CANCELed call"
    )
    assert err.request_type == message.Call.MESSAGE_TYPE
    assert err.error == CANCELED
    await within(endpoint.interrupted.wait(), "INTERRUPT at the callee (endpoint cancelled)")
    # the caller's session carries on
    err = await expect_error(caller.call(uri("adv.nobody_home")), "CALL after cancel")
    assert err.error == NO_SUCH_PROCEDURE


@pytest.mark.parametrize("combo", FEW, ids=FEW_IDS)
async def test_cancel_killnowait(peers, combo):
    """killnowait: caller's ERROR at once, INTERRUPT{killnowait} to the callee,
    the callee's later answer is dropped."""
    callee = await peers.connect(*combo)
    caller = await peers.connect(*combo)
    proc = uri("adv.cancel_killnowait")
    endpoint = Hanging(reply_after_interrupt=0.5)
    await within(callee.register(endpoint, proc), "REGISTERED")

    fut = caller.call(proc)
    request_id = request_id_of(caller, fut)
    await within(endpoint.invoked.wait(), "INVOCATION")
    send_cancel(caller, request_id, "killnowait")
    err = await expect_error(fut, "ERROR for the CANCELed call")
    assert err.error == CANCELED
    assert not endpoint.replied.is_set(), "killnowait waited for the callee's answer"
    intr = await callee.wait_received(is_interrupt, "INTERRUPT")
    assert intr.mode == message.Cancel.KILLNOWAIT
    await within(endpoint.interrupted.wait(), "endpoint cancelled")
    await within(endpoint.replied.wait(), "callee's late ERROR")
    # barrier: a later call on the same path is answered ...
    echo = uri("adv.cancel_killnowait_echo")
    await within(callee.register(lambda x: x, echo), "REGISTERED")
    assert_same(await within(caller.call(echo, 1), "RESULT"), 1)
    # ... and the callee's late ERROR was dropped, not forwarded a second time
    errors = [m for m in caller.received if isinstance(m, message.Error) and m.request == request_id]
    assert len(errors) == 1, errors


@pytest.mark.parametrize("combo", FEW, ids=FEW_IDS)
async def test_cancel_kill(peers, combo):
    """kill: INTERRUPT{kill} to the callee; the caller's ERROR waits for the callee's answer."""
    callee = await peers.connect(*combo)
    caller = await peers.connect(*combo)
    proc = uri("adv.cancel_kill")
    endpoint = Hanging(reply_after_interrupt=0.3)
    await within(callee.register(endpoint, proc), "REGISTERED")

    fut = caller.call(proc)
    await within(endpoint.invoked.wait(), "INVOCATION")
    send_cancel(caller, request_id_of(caller, fut), "kill")
    intr = await callee.wait_received(is_interrupt, "INTERRUPT")
    assert intr.mode == message.Cancel.KILL
    await within(endpoint.interrupted.wait(), "endpoint cancelled")
    assert not fut.done(), "kill: the caller was answered before the callee"
    err = await expect_error(fut, "ERROR for the CANCELed call")
    assert endpoint.replied.is_set(), "kill: the caller was answered before the callee"
    assert err.error == CANCELED


@pytest.mark.skipif(IS_CROSSBAR, reason="Crossbar 26.10 never answers a skip-mode CANCEL (README)")
@pytest.mark.parametrize("combo", FEW, ids=FEW_IDS)
async def test_cancel_skip(peers, combo):
    """skip: caller's ERROR at once, no INTERRUPT; the callee's late result is dropped."""
    callee = await peers.connect(*combo)
    caller = await peers.connect(*combo)
    proc = uri("adv.cancel_skip")
    endpoint = Hanging()
    await within(callee.register(endpoint, proc), "REGISTERED")

    fut = caller.call(proc)
    request_id = request_id_of(caller, fut)
    await within(endpoint.invoked.wait(), "INVOCATION")
    send_cancel(caller, request_id, "skip")
    err = await expect_error(fut, "ERROR for the CANCELed call")
    assert err.error == CANCELED
    endpoint.release.set()
    await within(endpoint.replied.wait(), "callee's late YIELD")
    # barrier: a later call on the same path is answered; nothing came for the old one
    echo = uri("adv.cancel_skip_echo")
    await within(callee.register(lambda x: x, echo), "REGISTERED")
    assert_same(await within(caller.call(echo, 1), "RESULT"), 1)
    assert results(caller, request_id) == [], "the skipped call's late result reached the caller"
    assert not endpoint.interrupted.is_set()
    assert not any(is_interrupt(m) for m in callee.received), "skip sent an INTERRUPT"


# ---------------------------------------------------------------------------
# 4.3 call timeout


@pytest.mark.parametrize("combo", FEW, ids=FEW_IDS)
async def test_call_timeout(peers, combo):
    """CALL.Options.timeout with a callee that never answers.

    Autobahn sends timeout=1 as given: 1 ms for a spec router (Junction), 1 s
    for Crossbar. Spec: ERROR wamp.error.timeout; Crossbar answers
    wamp.error.canceled ["timeout reached"] instead (README).
    """
    callee = await peers.connect(*combo)
    caller = await peers.connect(*combo)
    proc = uri("adv.timeout")
    endpoint = Hanging()
    await within(callee.register(endpoint, proc), "REGISTERED")

    fut = caller.call(proc, "slow", options=CallOptions(timeout=1))
    err = await expect_error(fut, "ERROR after the call timed out")
    assert err.error == (CANCELED if IS_CROSSBAR else TIMEOUT), err
    # the dealer cancels like killnowait: the (cancel-capable) callee is interrupted
    inv = await callee.wait_received(lambda m: isinstance(m, message.Invocation), "INVOCATION")
    intr = await callee.wait_received(is_interrupt, "INTERRUPT after the timeout")
    assert intr.request == inv.request
    assert intr.mode == message.Cancel.KILLNOWAIT

    # a generous timeout does not fire: 5000 (5 s for a spec router, 5000 s for Crossbar)
    quick = uri("adv.timeout_quick")
    await within(callee.register(lambda x: x * 2, quick), "REGISTERED")
    assert_same(await within(caller.call(quick, 21, options=CallOptions(timeout=5000)), "RESULT"), 42)


# ---------------------------------------------------------------------------
# 4.7 pattern-based registrations


async def test_pattern_registrations(peers, combo):
    callee = await peers.connect(*combo)
    caller = await peers.connect(*combo)
    base = uri("adv.pattern")

    def tagged(tag):
        def endpoint(*args, details):
            return CallResult(tag, details.procedure, *args)

        return endpoint

    regs = [
        ("exact", f"{base}.x.y", "exact"),
        ("prefix-long", f"{base}.x.y", "prefix"),
        ("prefix-mid", f"{base}.x", "prefix"),
        ("prefix-short", base, "prefix"),
        ("wildcard", f"{base}..y", "wildcard"),
    ]
    for tag, procedure, match in regs:
        await within(
            callee.register(tagged(tag), procedure, options=RegisterOptions(match=match, details_arg="details")),
            f"REGISTERED {tag}",
        )

    cases = [
        (f"{base}.x.y", "exact"),  # exact beats every pattern
        (f"{base}.x.y.z", "prefix-long"),  # longest prefix wins
        (f"{base}.x.yz", "prefix-long"),  # prefixes are string prefixes
        (f"{base}.x.q", "prefix-mid"),
        (f"{base}.w.y", "prefix-short"),  # a prefix beats a wildcard
        (f"{base}.w", "prefix-short"),
    ]
    for called, tag in cases:
        res = await within(caller.call(called, 7), f"RESULT for {called}")
        assert_same(list(res.results)[:1], [tag], f"registration chosen for {called}")
        assert_same(list(res.results)[1:], [called, 7], f"details.procedure for {called}")

    # wildcards alone: one empty component matches exactly one component
    wbase = uri("adv.wildcard")
    await within(
        callee.register(tagged("wild"), f"{wbase}..end", options=RegisterOptions(match="wildcard", details_arg="details")),
        "REGISTERED wildcard",
    )
    for called in (f"{wbase}.a.end", f"{wbase}.anything_else.end"):
        res = await within(caller.call(called), f"RESULT for {called}")
        assert_same(list(res.results), ["wild", called])
    # the INVOCATION carries the concrete URI on the wire
    invs = [m for m in callee.received if isinstance(m, message.Invocation)]
    assert invs[-1].procedure == f"{wbase}.anything_else.end"
    for called in (f"{wbase}.a.b.end", f"{wbase}.end", f"{wbase}.a.other"):
        err = await expect_error(caller.call(called), f"CALL {called}")
        assert err.error == NO_SUCH_PROCEDURE, called


# ---------------------------------------------------------------------------
# 4.8 shared registrations


async def shared_callees(peers, combo, proc, invoke, names=("A", "B"), endpoint=None):
    sessions = {}
    for name in names:
        s = await peers.connect(*combo)
        ep = endpoint(name) if endpoint else (lambda name=name: name)
        await within(s.register(ep, proc, options=RegisterOptions(invoke=invoke)), f"REGISTERED {name} ({invoke})")
        sessions[name] = s
    return sessions


async def test_shared_roundrobin(peers, combo):
    proc = uri("adv.shared_rr")
    await shared_callees(peers, combo, proc, "roundrobin")
    caller = await peers.connect(*combo)
    got = [await within(caller.call(proc), f"RESULT {i}") for i in range(6)]
    assert sorted(set(got)) == ["A", "B"], got
    assert all(a != b for a, b in zip(got, got[1:])), f"not round-robin: {got}"


async def test_shared_first_last(peers, combo):
    caller = await peers.connect(*combo)
    first = uri("adv.shared_first")
    callees = await shared_callees(peers, combo, first, "first")
    got = [await within(caller.call(first), "RESULT") for _ in range(3)]
    assert got == ["A", "A", "A"], got
    # A leaves: the next-oldest takes over
    callees["A"].leave()
    await within(callees["A"].disconnected, "A gone")
    assert await within(caller.call(first), "RESULT") == "B"

    last = uri("adv.shared_last")
    await shared_callees(peers, combo, last, "last")
    got = [await within(caller.call(last), "RESULT") for _ in range(3)]
    assert got == ["B", "B", "B"], got


async def test_shared_random(peers, combo):
    proc = uri("adv.shared_random")
    await shared_callees(peers, combo, proc, "random")
    caller = await peers.connect(*combo)
    got = await within(asyncio.gather(*(caller.call(proc) for _ in range(24))), "24 RESULTs")
    assert set(got) <= {"A", "B"}, got
    # uniform: both are picked (fails with probability 2^-23)
    assert set(got) == {"A", "B"}, got


async def test_shared_policy_conflicts(peers, combo):
    a = await peers.connect(*combo)
    b = await peers.connect(*combo)
    proc = uri("adv.shared_conflict")
    await within(a.register(lambda: "A", proc, options=RegisterOptions(invoke="roundrobin")), "REGISTERED")
    for other in ("random", "first", "last", "single"):
        err = await expect_error(
            b.register(lambda: "B", proc, options=RegisterOptions(invoke=other)), f"REGISTER invoke={other}"
        )
        assert err.error == POLICY_CONFLICT, (other, err.error)

    single = uri("adv.shared_single")
    await within(a.register(lambda: "A", single), "REGISTERED single")
    err = await expect_error(b.register(lambda: "B", single, options=RegisterOptions(invoke="roundrobin")), "REGISTER")
    assert err.error == PROCEDURE_ALREADY_EXISTS

    # the existing registrations still work
    caller = await peers.connect(*combo)
    assert await within(caller.call(proc), "RESULT") == "A"
    assert await within(caller.call(single), "RESULT") == "A"


async def test_shared_callee_leaves_mid_call(peers, combo):
    """Only the leaving callee's pending call ends (canceled); the other completes."""
    proc = uri("adv.shared_leave")
    endpoints = {name: Hanging() for name in ("A", "B")}
    callees = await shared_callees(peers, combo, proc, "roundrobin", endpoint=lambda n: endpoints[n])
    caller = await peers.connect(*combo)
    calls = [asyncio.ensure_future(caller.call(proc, i)) for i in range(2)]
    await within(asyncio.gather(*(e.invoked.wait() for e in endpoints.values())), "one INVOCATION at each callee")

    callees["A"].drop_transport()
    done, _ = await within(asyncio.wait(calls, return_when=asyncio.FIRST_COMPLETED), "the dropped callee's call")
    [ended] = done
    assert isinstance(ended.exception(), ApplicationError) and ended.exception().error == CANCELED
    [still] = [c for c in calls if c is not ended]
    await asyncio.sleep(0.1)
    assert not still.done(), "the other callee's call ended too"

    endpoints["B"].release.set()
    assert await within(still, "RESULT from the remaining callee") == "released"
    # and the registration lives on with B alone (B's endpoint stays released)
    assert await within(caller.call(proc), "RESULT") == "released"
    assert endpoints["B"].calls == 2


# ---------------------------------------------------------------------------
# 4.5 caller identification


async def test_caller_disclosure(peers, combo):
    callee = await peers.connect(*combo)
    caller = await peers.connect(*combo)
    # under junction.interop.disclose.: Crossbar ignores disclose_me and
    # discloses there by permission (crossbar.sh); a spec router by the flag
    proc = uri("disclose.who")
    seen = Inbox()

    def who(details):
        seen(details.caller, details.caller_authid, details.caller_authrole)
        return "ok"

    await within(callee.register(who, proc, options=WITH_DETAILS), "REGISTERED")
    assert await within(call_with_options(caller, proc, options={"disclose_me": True}), "RESULT") == "ok"
    (session_id, authid, authrole), _ = await seen.get("INVOCATION")
    assert_same(session_id, caller.session_id)
    assert_same(authid, caller.authid)
    assert_same(authrole, caller.authrole)

    # not asked for, not disclosed (a procedure outside junction.interop.disclose.)
    quiet = uri("adv.quiet")
    await within(callee.register(who, quiet, options=WITH_DETAILS), "REGISTERED")
    assert await within(caller.call(quiet), "RESULT") == "ok"
    assert_same(await seen.get("INVOCATION"), ([None, None, None], {}))
