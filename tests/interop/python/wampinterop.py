"""Helpers for the WAMP interop suite (Autobahn|Python on asyncio).

Every connection uses exactly ONE serializer (json, msgpack or cbor, never a
batched variant) so that the test says which serializer the router must speak.
The router is chosen with environment variables:

    WAMP_WS_URL   WebSocket URL              (default ws://127.0.0.1:8080/ws)
    WAMP_RS_HOST  RawSocket host             (default 127.0.0.1)
    WAMP_RS_PORT  RawSocket TCP port         (default 8081)
    WAMP_REALM    realm to join              (default realm1)
    WAMP_ROUTER   junction | crossbar        (default junction): the few tests
                  that meet a known Crossbar deviation from the spec read it
"""

from __future__ import annotations

import asyncio
import math
import os
import uuid
from typing import Any

import txaio

txaio.use_asyncio()

from autobahn.asyncio.rawsocket import WampRawSocketClientFactory  # noqa: E402
from autobahn.asyncio.wamp import ApplicationSession  # noqa: E402
from autobahn.asyncio.websocket import WampWebSocketClientFactory  # noqa: E402
from autobahn.wamp.serializer import (  # noqa: E402
    CBORSerializer,
    JsonSerializer,
    MsgPackSerializer,
)
from autobahn.wamp import message  # noqa: E402
from autobahn.wamp import role as wamp_role  # noqa: E402
from autobahn.wamp.request import (  # noqa: E402
    CallRequest,
    Handler,
    PublishRequest,
    SubscribeRequest,
)
from autobahn.wamp.types import CallResult, ComponentConfig  # noqa: E402
from autobahn.websocket.util import parse_url as parse_ws_url  # noqa: E402

WS_URL = os.environ.get("WAMP_WS_URL") or "ws://127.0.0.1:8080/ws"
RS_HOST = os.environ.get("WAMP_RS_HOST") or "127.0.0.1"
RS_PORT = int(os.environ.get("WAMP_RS_PORT") or "8081")
REALM = os.environ.get("WAMP_REALM") or "realm1"
ROUTER = (os.environ.get("WAMP_ROUTER") or "junction").lower()
IS_CROSSBAR = ROUTER == "crossbar"

TRANSPORTS = ("websocket", "rawsocket")
SERIALIZERS = {
    "json": JsonSerializer,
    "msgpack": MsgPackSerializer,
    "cbor": CBORSerializer,
}
# (transport, serializer) combinations every basic scenario runs with
COMBOS = [(t, s) for t in TRANSPORTS for s in SERIALIZERS]
# (sender, receiver) serializer pairs for the cross-serializer scenarios;
# sender = publisher / caller
CROSS = [
    ("json", "msgpack"),
    ("json", "cbor"),
    ("msgpack", "json"),
    ("cbor", "json"),
    ("msgpack", "cbor"),
    ("cbor", "msgpack"),
]
CROSS_IDS = [f"{a}-to-{b}" for a, b in CROSS]

# how long a single awaited step may take before the test fails
STEP_TIMEOUT = float(os.environ.get("WAMP_STEP_TIMEOUT", "3"))
# how long we keep listening to make sure something does NOT arrive
# (only used after a positive barrier, see Inbox.assert_empty)
NO_EVENT_GRACE = 0.1

# the largest integer every test payload carries (WAMP ids go up to 2^53 too)
MAX_SAFE_INT = 2**53


def uri(name: str) -> str:
    """A URI unique to this run, so leftovers of other tests never interfere."""
    return f"junction.interop.{name}.{uuid.uuid4().hex[:12]}"


async def within(aw, what: str, timeout: float = STEP_TIMEOUT):
    """Await `aw`, failing the test (not hanging) after `timeout` seconds."""
    try:
        return await asyncio.wait_for(aw, timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None


class Client(ApplicationSession):
    """An ApplicationSession that exposes joined/disconnected futures."""

    def __init__(self, config):
        super().__init__(config)
        loop = asyncio.get_running_loop()
        self.joined: asyncio.Future = loop.create_future()
        self.disconnected: asyncio.Future = loop.create_future()
        self.serializer_name: str | None = None
        self.transport_name: str | None = None
        self.leave_details = None
        # every WAMP message received, in order (see wait_received)
        self.received: list = []
        self._received_changed = asyncio.Event()

    def onMessage(self, msg):
        self.received.append(msg)
        self._received_changed.set()
        return super().onMessage(msg)

    async def wait_received(self, pred, what: str, timeout: float = STEP_TIMEOUT):
        """The first received message (past or future) for which pred(msg) is true."""

        async def scan():
            seen = 0
            while True:
                for msg in self.received[seen:]:
                    if pred(msg):
                        return msg
                seen = len(self.received)
                self._received_changed.clear()
                await self._received_changed.wait()

        return await within(scan(), what, timeout)

    # Authentication (see connect(auth=...)): HELLO's auth fields and how to
    # answer CHALLENGE; None = anonymous.
    auth: dict | None = None

    def onConnect(self):
        if not self.auth:
            return super().onConnect()
        self.join(
            self.config.realm,
            authmethods=self.auth["authmethods"],
            authid=self.auth.get("authid"),
            authextra=self.auth.get("authextra"),
        )

    def onChallenge(self, challenge):
        if not self.auth or "answer" not in self.auth:
            return super().onChallenge(challenge)
        return self.auth["answer"](self, challenge)

    def onWelcome(self, welcome):
        # mutual authentication (WAMP-SCRAM checks the server's signature here)
        if self.auth and "on_welcome" in self.auth:
            return self.auth["on_welcome"](self, welcome.authextra)
        return super().onWelcome(welcome)

    def onJoin(self, details):
        if not self.joined.done():
            self.joined.set_result(details)

    def onLeave(self, details):
        self.leave_details = details  # ABORT / GOODBYE reason, for error messages
        return super().onLeave(details)

    def onDisconnect(self):
        super().onDisconnect()
        if not self.disconnected.done():
            self.disconnected.set_result(None)
        if not self.joined.done():
            why = self.leave_details
            self.joined.set_exception(
                ConnectionError(
                    "transport closed before the session was joined"
                    + (f" ({why.reason}: {why.message or ''})" if why else "")
                )
            )

    def drop_transport(self):
        """Kill the connection without a WAMP GOODBYE (like a crashed client)."""
        t = self._transport
        if t is not None:
            t.transport.abort()

    def __repr__(self):
        return f"<Client {self.transport_name}/{self.serializer_name} session={self._session_id}>"


async def connect(
    transport: str,
    serializer: str,
    realm: str | None = None,
    features: dict[str, dict[str, bool]] | None = None,
    auth: dict | None = None,
) -> Client:
    """Open a transport with exactly one serializer and join the realm.

    `features` adds feature flags to HELLO.Details.roles (e.g.
    {"publisher": {"payload_passthru_mode": True}}), for features Autobahn
    doesn't announce itself. `auth` = {"authmethods", "authid"?, "authextra"?,
    "answer"? (session, challenge) -> signature, "on_welcome"? (session,
    authextra) -> None or why the router is not trusted}. A refused join raises
    ConnectionError; the session's `leave_details.reason` is in its text.
    """
    if transport not in TRANSPORTS:
        raise ValueError(f"unknown transport {transport!r}")
    loop = asyncio.get_running_loop()
    txaio.config.loop = loop
    session = Client(ComponentConfig(realm=realm or REALM))
    session.serializer_name = serializer
    session.transport_name = transport
    session.auth = auth
    if features:
        session._session_roles = with_features(session._session_roles, features)
    ser = SERIALIZERS[serializer]()

    if transport == "websocket":
        is_secure, host, port, _resource, _path, _params = parse_ws_url(WS_URL)
        if is_secure:
            raise ValueError("wss:// is not supported by the interop suite")
        factory = WampWebSocketClientFactory(lambda: session, url=WS_URL, serializers=[ser])
        factory.setProtocolOptions(openHandshakeTimeout=STEP_TIMEOUT, closeHandshakeTimeout=1.0)
    else:
        host, port = RS_HOST, RS_PORT
        factory = WampRawSocketClientFactory(lambda: session, serializer=ser)

    where = f"{transport} connection to {host}:{port}"
    _transport, proto = await within(loop.create_connection(factory, host, port), where)
    closed = asyncio.ensure_future(proto.is_closed)
    try:
        await within(
            asyncio.wait({session.joined, closed}, return_when=asyncio.FIRST_COMPLETED),
            f"WELCOME on {where} ({serializer})",
        )
        if not session.joined.done():
            why = session.leave_details
            raise ConnectionError(
                f"{where} ({serializer}) closed before WELCOME"
                + (f" ({why.reason}: {why.message or ''})" if why else "")
            )
        session.joined.result()
    except BaseException:
        _transport.abort()
        raise

    # make sure the router really speaks the serializer we asked for
    if transport == "websocket":
        assert proto.websocket_protocol_in_use == f"wamp.2.{serializer}", (
            f"negotiated subprotocol {proto.websocket_protocol_in_use!r}"
        )
    else:
        assert proto._serializer.SERIALIZER_ID == serializer
    return session


async def disconnect(session: Client, timeout: float = 2.0) -> None:
    """Leave politely (GOODBYE; the reason is not checked), then close."""
    if session.disconnected.done():
        return
    try:
        if session.is_attached():
            session.leave()
        await asyncio.wait_for(asyncio.shield(session.disconnected), timeout)
    except Exception:
        session.drop_transport()


def request_id_of(session: Client, call_future) -> int:
    """The CALL request ID behind a future returned by Autobahn's call()."""
    for request_id, req in session._call_reqs.items():
        if req.on_reply is call_future:
            return request_id
    raise AssertionError("call is not pending any more")


def send_cancel(session: Client, request_id: int, mode: str | None) -> None:
    """Send CANCEL with an explicit mode (Autobahn's own cancel() never sets one).

    The call's future stays pending and is settled by the router's answer.
    """
    session._transport.send(message.Cancel(request_id, mode=mode))


class _CallWithExtraOptions(message.Call):
    """A CALL whose Options carry keys Autobahn|Python has no API for."""

    def __init__(self, *args, extra_options: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self._extra_options = extra_options

    def marshal(self):
        msg = super().marshal()
        msg[2] = {**msg[2], **self._extra_options}
        return msg


def call_with_options(session: Client, procedure: str, *args, options: dict, **kwargs):
    """Like session.call(), with raw CALL.Options keys (e.g. disclose_me).

    Autobahn|Python 26 has no disclose_me (CallOptions can't express it), so
    the CALL is built here; the reply is handled by Autobahn as usual.
    """
    request_id = session._request_id_gen.next()
    on_reply = asyncio.get_running_loop().create_future()
    session._call_reqs[request_id] = CallRequest(request_id, procedure, on_reply, None)
    msg = _CallWithExtraOptions(
        request_id, procedure, args=list(args), kwargs=kwargs, extra_options=options
    )
    session._transport.send(msg)
    return on_reply


def with_features(roles: dict, features: dict[str, dict[str, bool]]) -> dict:
    """A copy of Autobahn's HELLO roles with extra feature flags set."""
    out = dict(roles)
    for role_name, flags in features.items():
        base = out.get(role_name)
        if base is None:
            cls = {
                "publisher": wamp_role.RolePublisherFeatures,
                "subscriber": wamp_role.RoleSubscriberFeatures,
                "caller": wamp_role.RoleCallerFeatures,
                "callee": wamp_role.RoleCalleeFeatures,
            }[role_name]
            base = cls()
        copy_ = object.__new__(type(base))
        copy_.__dict__.update(base.__dict__)
        copy_.__dict__.update(flags)  # Hello.marshal sends every public attribute
        out[role_name] = copy_
    return out


class _PublishWithExtraOptions(message.Publish):
    """A PUBLISH whose Options carry keys Autobahn|Python has no API for."""

    def __init__(self, *args, extra_options: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self._extra_options = extra_options

    def marshal(self):
        msg = super().marshal()
        msg[2] = {**msg[2], **self._extra_options}
        return msg


def publish_with_options(session: Client, topic: str, *args, options: dict, **kwargs):
    """Like session.publish(), with raw PUBLISH.Options (any key, any type).

    Autobahn|Python checks topic URIs and option types before sending and has
    no disclose_me or ppt_* options; this sends exactly what it is given.
    With options["acknowledge"] true it returns a future for the Publication
    (or the ERROR, as ApplicationError), else None.
    """
    request_id = session._request_id_gen.next()
    on_reply = None
    if options.get("acknowledge") is True:
        on_reply = asyncio.get_running_loop().create_future()
        session._publish_reqs[request_id] = PublishRequest(request_id, on_reply, was_encrypted=False)
    msg = _PublishWithExtraOptions(
        request_id, topic, args=list(args), kwargs=kwargs, extra_options=options
    )
    session._transport.send(msg)
    return on_reply


class _SubscribeWithExtraOptions(message.Subscribe):
    def __init__(self, *args, extra_options: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self._extra_options = extra_options

    def marshal(self):
        msg = super().marshal()
        msg[2] = {**msg[2], **self._extra_options}
        return msg


def subscribe_with_options(session: Client, handler, topic: str, *, options: dict):
    """Like session.subscribe(handler, topic) with raw SUBSCRIBE.Options.

    The handler gets EventDetails as keyword `details`. Returns a future for
    the Subscription (or the ERROR, as ApplicationError).
    """
    request_id = session._request_id_gen.next()
    on_reply = asyncio.get_running_loop().create_future()
    session._subscribe_reqs[request_id] = SubscribeRequest(
        request_id, topic, on_reply, Handler(handler, None, "details")
    )
    session._transport.send(
        _SubscribeWithExtraOptions(request_id, topic, extra_options=options)
    )
    return on_reply


def record_raw(session: Client) -> list:
    """Start recording every message the session receives as the decoded raw
    list (before Autobahn parses it), so that keys Autobahn drops (e.g.
    ppt_*) can be checked. Returns the (growing) list."""
    ser = session._transport._serializer._serializer  # the object serializer
    raw: list = []
    unserialize = ser.unserialize

    def recording(payload):
        msgs = unserialize(payload)
        raw.extend(msgs)
        return msgs

    ser.unserialize = recording
    return raw


class Peers:
    """Opens sessions for one test and closes all of them afterwards."""

    def __init__(self):
        self.sessions: list[Client] = []

    async def connect(self, transport: str, serializer: str, **kwargs) -> Client:
        s = await connect(transport, serializer, **kwargs)
        self.sessions.append(s)
        return s

    async def aclose(self):
        await asyncio.gather(*(disconnect(s) for s in self.sessions), return_exceptions=True)
        self.sessions.clear()


class Inbox:
    """Callable that records (args, kwargs) of every event / invocation."""

    def __init__(self, result=None):
        self.queue: asyncio.Queue = asyncio.Queue()
        self.result = result

    def __call__(self, *args, **kwargs):
        self.queue.put_nowait((list(args), dict(kwargs)))
        return self.result

    async def get(self, what: str = "event", timeout: float = STEP_TIMEOUT):
        return await within(self.queue.get(), what, timeout)

    async def assert_empty(self, what: str = "event"):
        # Callers establish a positive barrier first (something sent later on
        # the same path has arrived), so a short grace is enough.
        await asyncio.sleep(NO_EVENT_GRACE)
        assert self.queue.empty(), f"unexpected {what}: {self.queue.get_nowait()!r}"


def echo(*args, **kwargs):
    """Callee that returns exactly what it got."""
    return CallResult(*args, **kwargs)


def result_parts(res) -> tuple[list, dict]:
    """Turn what Autobahn's call() returns back into (args, kwargs)."""
    if isinstance(res, CallResult):
        return list(res.results), dict(res.kwresults)
    if res is None:
        return [], {}
    return [res], {}


def assert_same(actual: Any, expected: Any, path: str = "$") -> None:
    """Strict deep equality: types must match too (True != 1, 1.0 != 1, bytes != str)."""
    assert type(actual) is type(expected), (
        f"{path}: type {type(actual).__name__} ({actual!r}) != "
        f"{type(expected).__name__} ({expected!r})"
    )
    if isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), f"{path}: length {len(actual)} != {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_same(a, e, f"{path}[{i}]")
    elif isinstance(expected, dict):
        assert set(actual) == set(expected), (
            f"{path}: keys {sorted(actual)!r} != {sorted(expected)!r}"
        )
        for k in expected:
            assert_same(actual[k], expected[k], f"{path}[{k!r}]")
    elif isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(actual), f"{path}: {actual!r} is not NaN"
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


# ---------------------------------------------------------------------------
# payloads

# Values every serializer (json, msgpack, cbor) carries without loss.
# No integral floats (JSON can't keep 2.0 apart from 2 across languages).
PAYLOAD_ARGS: list[Any] = [
    "héllo wörld ☃ 日本語 😀 \u00a0tab\tnewline\nquote\"backslash\\",
    "",
    0,
    1,
    -1,
    255,
    65536,
    2**32 + 1,
    MAX_SAFE_INT - 1,
    MAX_SAFE_INT,
    -MAX_SAFE_INT,
    1.5,
    -0.25,
    0.1,
    3.141592653589793,
    1e300,
    -2.5e-300,
    True,
    False,
    None,
    [],
    {},
    [1, [2, [3, [4, {"deep": ["x", None, True, 0.5]}]]]],
    {"nested": {"list": [1, 2.5, "three", False, None], "ünïcødé kéy ✓": "välue 😀"}},
]

PAYLOAD_KWARGS: dict[str, Any] = {
    "max_safe_int": MAX_SAFE_INT,
    "min_safe_int": -MAX_SAFE_INT,
    "float": 0.1,
    "flag_true": True,
    "flag_false": False,
    "nothing": None,
    "text": "ünïcødé 😀 ☃",
    "empty_text": "",
    "empty_list": [],
    "empty_dict": {},
    "list": [1, "two", 3.5, [None, {"x": [True]}]],
    "dict": {"a": {"b": {"c": [1, 2, {"d": "e"}]}}},
    "ключ": "значение",
}

# bytes, standing alone and nested in lists / dicts
BINARY_ARGS: list[Any] = [
    b"\x00\x01\x02\x03\xfe\xff",
    bytes(range(256)),
    b"",
    b"\x00",
    [b"in a list", "not bytes"],
]

BINARY_KWARGS: dict[str, Any] = {
    "blob": b"\xde\xad\xbe\xef",
    "nested": {"list": [b"\x00\x10\x20", {"deeper": b"\xff" * 3}], "text": "still text"},
    "text": "plain string",
}
