"""Binary payloads (bytes) in args and kwargs, also converted between serializers.

JSON carries bytes as "\\u0000" + base64 strings (WAMP spec); msgpack as bin,
CBOR as byte strings. The router must convert when publisher/caller and
subscriber/callee use different serializers.
"""

import copy

import pytest
from autobahn.wamp.types import PublishOptions

from wampinterop import (
    BINARY_ARGS,
    BINARY_KWARGS,
    CROSS,
    CROSS_IDS,
    Inbox,
    assert_same,
    echo,
    result_parts,
    uri,
    within,
)

ACK = PublishOptions(acknowledge=True)


async def _pubsub_binary(peers, pub_combo, sub_combo):
    sub = await peers.connect(*sub_combo)
    pub = await peers.connect(*pub_combo)
    topic = uri("binary.pubsub")
    inbox = Inbox()
    await within(sub.subscribe(inbox, topic), "SUBSCRIBED")
    await within(
        pub.publish(topic, *copy.deepcopy(BINARY_ARGS), options=ACK, **copy.deepcopy(BINARY_KWARGS)),
        "PUBLISHED",
    )
    args, kwargs = await inbox.get("EVENT with binary payload")
    assert_same(args, BINARY_ARGS, "event args")
    assert_same(kwargs, BINARY_KWARGS, "event kwargs")


async def _rpc_binary(peers, caller_combo, callee_combo):
    callee = await peers.connect(*callee_combo)
    caller = await peers.connect(*caller_combo)
    proc = uri("binary.rpc")
    seen = Inbox()

    def handler(*args, **kwargs):
        seen(*args, **kwargs)
        return echo(*args, **kwargs)

    await within(callee.register(handler, proc), "REGISTERED")
    res = await within(
        caller.call(proc, *copy.deepcopy(BINARY_ARGS), **copy.deepcopy(BINARY_KWARGS)), "RESULT"
    )
    # the callee must have received real bytes (not "\0base64" strings) ...
    inv_args, inv_kwargs = await seen.get("INVOCATION")
    assert_same(inv_args, BINARY_ARGS, "invocation args")
    assert_same(inv_kwargs, BINARY_KWARGS, "invocation kwargs")
    # ... and the caller gets them back as bytes
    res_args, res_kwargs = result_parts(res)
    assert_same(res_args, BINARY_ARGS, "result args")
    assert_same(res_kwargs, BINARY_KWARGS, "result kwargs")


async def test_binary_pubsub(peers, combo):
    await _pubsub_binary(peers, combo, combo)


async def test_binary_rpc(peers, combo):
    await _rpc_binary(peers, combo, combo)


# sender on WebSocket, receiver on RawSocket
@pytest.mark.parametrize("sender,receiver", CROSS, ids=CROSS_IDS)
async def test_binary_pubsub_across_serializers(peers, sender, receiver):
    await _pubsub_binary(peers, ("websocket", sender), ("rawsocket", receiver))


@pytest.mark.parametrize("sender,receiver", CROSS, ids=CROSS_IDS)
async def test_binary_rpc_across_serializers(peers, sender, receiver):
    await _rpc_binary(peers, ("websocket", sender), ("rawsocket", receiver))


@pytest.mark.parametrize("sender,receiver", CROSS, ids=CROSS_IDS)
async def test_binary_rpc_across_serializers_same_transport(peers, sender, receiver):
    await _rpc_binary(peers, ("websocket", sender), ("websocket", receiver))
