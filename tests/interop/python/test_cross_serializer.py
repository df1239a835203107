"""Ordinary payloads and errors between sessions that use different serializers.

The router has to re-encode every message (json <-> msgpack <-> cbor); the
values must survive that unchanged.
"""

import copy

import pytest
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions

from wampinterop import (
    CROSS,
    CROSS_IDS,
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

ACK = PublishOptions(acknowledge=True)


@pytest.mark.parametrize("sender,receiver", CROSS, ids=CROSS_IDS)
async def test_pubsub_payload_across_serializers(peers, sender, receiver):
    sub = await peers.connect("rawsocket", receiver)
    pub = await peers.connect("websocket", sender)
    topic = uri("cross.pubsub")
    inbox = Inbox()
    await within(sub.subscribe(inbox, topic), "SUBSCRIBED")
    await within(
        pub.publish(topic, *copy.deepcopy(PAYLOAD_ARGS), options=ACK, **copy.deepcopy(PAYLOAD_KWARGS)),
        "PUBLISHED",
    )
    args, kwargs = await inbox.get("EVENT")
    assert_same(args, PAYLOAD_ARGS, "event args")
    assert_same(kwargs, PAYLOAD_KWARGS, "event kwargs")


@pytest.mark.parametrize("sender,receiver", CROSS, ids=CROSS_IDS)
async def test_rpc_payload_and_error_across_serializers(peers, sender, receiver):
    callee = await peers.connect("rawsocket", receiver)
    caller = await peers.connect("websocket", sender)
    proc = uri("cross.echo")
    failing = uri("cross.fails")
    seen = Inbox()

    def handler(*args, **kwargs):
        seen(*args, **kwargs)
        return echo(*args, **kwargs)

    def fails():
        raise ApplicationError("junction.interop.error.cross", "ünï", MAX_SAFE_INT, why={"x": [0.5]})

    await within(callee.register(handler, proc), "REGISTERED")
    await within(callee.register(fails, failing), "REGISTERED")

    res = await within(
        caller.call(proc, *copy.deepcopy(PAYLOAD_ARGS), **copy.deepcopy(PAYLOAD_KWARGS)), "RESULT"
    )
    inv_args, inv_kwargs = await seen.get("INVOCATION")
    assert_same(inv_args, PAYLOAD_ARGS, "invocation args")
    assert_same(inv_kwargs, PAYLOAD_KWARGS, "invocation kwargs")
    res_args, res_kwargs = result_parts(res)
    assert_same(res_args, PAYLOAD_ARGS, "result args")
    assert_same(res_kwargs, PAYLOAD_KWARGS, "result kwargs")

    try:
        await within(caller.call(failing), "ERROR")
    except ApplicationError as e:
        assert e.error == "junction.interop.error.cross"
        assert_same(list(e.args), ["ünï", MAX_SAFE_INT])
        assert_same(e.kwargs, {"why": {"x": [0.5]}})
    else:
        raise AssertionError("expected an ERROR")
