"""Remote procedure calls with Autobahn|Python, on every transport x serializer."""

import asyncio
import copy

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallResult

from wampinterop import (
    MAX_SAFE_INT,
    PAYLOAD_ARGS,
    PAYLOAD_KWARGS,
    Inbox,
    assert_same,
    echo,
    result_parts,
    uri,
    within,
)

NO_SUCH_PROCEDURE = "wamp.error.no_such_procedure"
PROCEDURE_ALREADY_EXISTS = "wamp.error.procedure_already_exists"
CANCELED = "wamp.error.canceled"


async def expect_error(aw, what: str) -> ApplicationError:
    try:
        res = await within(aw, what)
    except ApplicationError as e:
        return e
    raise AssertionError(f"{what}: expected an ERROR, got result {res!r}")


async def test_call_roundtrip(peers, combo):
    callee = await peers.connect(*combo)
    caller = await peers.connect(*combo)
    proc = uri("rpc.echo")
    seen = Inbox()

    def handler(*args, **kwargs):
        seen(*args, **kwargs)
        return echo(*args, **kwargs)

    await within(callee.register(handler, proc), "REGISTERED")

    cases = [
        (PAYLOAD_ARGS, PAYLOAD_KWARGS),
        (["only", "args", -MAX_SAFE_INT, 0.5], {}),
        ([], {"only": "kwargs", "n": MAX_SAFE_INT}),
    ]
    for args, kwargs in cases:
        res = await within(
            caller.call(proc, *copy.deepcopy(args), **copy.deepcopy(kwargs)), "RESULT"
        )
        # what the callee got (INVOCATION) ...
        inv_args, inv_kwargs = await seen.get("INVOCATION")
        assert_same(inv_args, args, "invocation args")
        assert_same(inv_kwargs, kwargs, "invocation kwargs")
        # ... and what came back (YIELD -> RESULT)
        res_args, res_kwargs = result_parts(res)
        assert_same(res_args, args, "result args")
        assert_same(res_kwargs, kwargs, "result kwargs")


async def test_call_single_value_and_empty(peers, combo):
    callee = await peers.connect(*combo)
    caller = await peers.connect(*combo)
    add = uri("rpc.add")
    nothing = uri("rpc.nothing")
    await within(callee.register(lambda a, b: a + b, add), "REGISTERED add")
    await within(callee.register(lambda: None, nothing), "REGISTERED nothing")

    assert_same(await within(caller.call(add, 2, 3), "RESULT add"), 5)
    assert_same(await within(caller.call(add, 0.25, 0.5), "RESULT add"), 0.75)
    assert_same(await within(caller.call(add, "ab", "cd"), "RESULT add"), "abcd")
    assert_same(await within(caller.call(nothing), "RESULT nothing"), None)


async def test_application_error_propagates(peers, combo):
    callee = await peers.connect(*combo)
    caller = await peers.connect(*combo)
    proc = uri("rpc.fails")
    error_uri = "junction.interop.error.custom_failure"
    err_args = ["something went wrong ☹", 42, MAX_SAFE_INT, 0.5, None, [1, {"k": [True]}]]
    err_kwargs = {"reason": "ünïcødé", "code": -7, "detail": {"nested": [None, False]}}

    def failing(*args, **kwargs):
        raise ApplicationError(error_uri, *copy.deepcopy(err_args), **copy.deepcopy(err_kwargs))

    await within(callee.register(failing, proc), "REGISTERED")
    err = await expect_error(caller.call(proc, "x", k="v"), "CALL to failing procedure")
    assert err.error == error_uri
    assert_same(list(err.args), err_args, "error args")
    assert_same(err.kwargs, err_kwargs, "error kwargs")

    # error with neither args nor kwargs
    bare = uri("rpc.fails_bare")
    bare_uri = "junction.interop.error.bare"

    def failing_bare():
        raise ApplicationError(bare_uri)

    await within(callee.register(failing_bare, bare), "REGISTERED")
    err = await expect_error(caller.call(bare), "CALL to failing procedure")
    assert err.error == bare_uri
    assert list(err.args) == []
    assert err.kwargs == {}


async def test_call_unregistered_procedure(peers, combo):
    caller = await peers.connect(*combo)
    err = await expect_error(caller.call(uri("rpc.nobody_home"), 1), "CALL")
    assert err.error == NO_SUCH_PROCEDURE


async def test_register_twice_from_another_session(peers, combo):
    first = await peers.connect(*combo)
    second = await peers.connect(*combo)
    caller = await peers.connect(*combo)
    proc = uri("rpc.taken")

    await within(first.register(lambda: "first", proc), "REGISTERED")
    err = await expect_error(second.register(lambda: "second", proc), "second REGISTER")
    assert err.error == PROCEDURE_ALREADY_EXISTS

    # the original registration is untouched
    assert_same(await within(caller.call(proc), "RESULT"), "first")


async def test_unregister_then_call(peers, combo):
    callee = await peers.connect(*combo)
    caller = await peers.connect(*combo)
    proc = uri("rpc.unregister")

    reg = await within(callee.register(lambda: "here", proc), "REGISTERED")
    assert_same(await within(caller.call(proc), "RESULT"), "here")
    await within(reg.unregister(), "UNREGISTERED")
    err = await expect_error(caller.call(proc), "CALL after UNREGISTER")
    assert err.error == NO_SUCH_PROCEDURE

    # the URI is free again: another session can register it
    other = await peers.connect(*combo)
    await within(other.register(lambda: "again", proc), "REGISTERED again")
    assert_same(await within(caller.call(proc), "RESULT"), "again")


@pytest.mark.parametrize("how", ["goodbye", "drop"])
async def test_callee_leaves_during_call(peers, combo, how):
    """Callee goes away with an INVOCATION pending -> caller gets wamp.error.canceled."""
    callee = await peers.connect(*combo)
    caller = await peers.connect(*combo)
    proc = uri("rpc.hangs")
    invoked = asyncio.Event()

    async def hangs(*args, **kwargs):
        invoked.set()
        await asyncio.sleep(30)  # never answers in time; cancelled at test end

    await within(callee.register(hangs, proc), "REGISTERED")
    call = asyncio.ensure_future(caller.call(proc, "ping"))
    await within(invoked.wait(), "INVOCATION at the callee")
    assert not call.done()

    if how == "goodbye":
        callee.leave()
    else:
        callee.drop_transport()

    err = await expect_error(call, "ERROR for the pending CALL")
    assert err.error == CANCELED

    # the registration went away with the callee
    err = await expect_error(caller.call(proc), "CALL after the callee left")
    assert err.error == NO_SUCH_PROCEDURE


async def test_kwargs_only_result(peers, combo):
    """A callee may answer with kwargs only (YIELD with empty args list)."""
    callee = await peers.connect(*combo)
    caller = await peers.connect(*combo)
    proc = uri("rpc.kwargs_only")
    await within(
        callee.register(lambda: CallResult(status="ok", count=MAX_SAFE_INT), proc), "REGISTERED"
    )
    res_args, res_kwargs = result_parts(await within(caller.call(proc), "RESULT"))
    assert_same(res_args, [])
    assert_same(res_kwargs, {"status": "ok", "count": MAX_SAFE_INT})
