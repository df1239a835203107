"""Dynamic authentication and authorization with Autobahn|Python (WAMP-FEATURES.md
5.9, 6.3): an authenticator and an authorizer registered by an Autobahn component
on realm `dynauth-backend` decide who joins realm `dynauth` (ticket, WAMP-CRA)
and what sessions in role `user` may do. The clients are Autobahn's own ticket
and WAMP-CRA implementations.

Needs the realms of tests/interop/junction.toml; skipped against Crossbar.io,
whose interop configuration does not declare them.
"""

import asyncio

import pytest
import txaio

from wampinterop import (
    IS_CROSSBAR,
    RS_HOST,
    RS_PORT,
    SERIALIZERS,
    STEP_TIMEOUT,
    WS_URL,
    Client,
    disconnect,
    within,
)
from autobahn.asyncio.rawsocket import WampRawSocketClientFactory  # noqa: E402
from autobahn.asyncio.websocket import WampWebSocketClientFactory  # noqa: E402
from autobahn.wamp import auth  # noqa: E402
from autobahn.wamp.exception import ApplicationError  # noqa: E402
from autobahn.wamp.types import ComponentConfig  # noqa: E402
from autobahn.websocket.util import parse_url as parse_ws_url  # noqa: E402

pytestmark = pytest.mark.skipif(IS_CROSSBAR, reason="realms dynauth* are junction's config")

REALM = "dynauth"
BACKEND_REALM = "dynauth-backend"
COMBOS = [("websocket", "json"), ("rawsocket", "msgpack")]

USERS = {"joe": "joe-ticket"}
CRA = {"peter": "secret123"}


class AuthClient(Client):
    """Joins with the given authmethods and answers ticket / wampcra challenges."""

    def __init__(self, config, authid, authmethods, secret):
        super().__init__(config)
        self._authid = authid
        self._authmethods = authmethods
        self._secret = secret

    def onConnect(self):
        self.join(self.config.realm, authmethods=self._authmethods, authid=self._authid)

    def onChallenge(self, challenge):
        if challenge.method == "ticket":
            return self._secret
        if challenge.method == "wampcra":
            key = self._secret
            if "salt" in challenge.extra:
                key = auth.derive_key(
                    self._secret,
                    challenge.extra["salt"],
                    challenge.extra["iterations"],
                    challenge.extra["keylen"],
                )
            return auth.compute_wcs(key, challenge.extra["challenge"])
        raise Exception(f"unexpected challenge {challenge.method}")


async def open_session(transport, serializer, realm, authid=None, authmethods=None, secret=None):
    """Connects and waits for WELCOME or the end of the connection.

    Returns the session; `session.joined` holds the WELCOME details or the
    exception, `session.leave_details` the ABORT."""
    loop = asyncio.get_running_loop()
    # Each test runs on its own loop (conftest.py); txaio must use this one.
    txaio.config.loop = loop
    config = ComponentConfig(realm=realm)
    if authmethods:
        session = AuthClient(config, authid, authmethods, secret)
    else:
        session = Client(config)
    ser = SERIALIZERS[serializer]()
    if transport == "websocket":
        _s, host, port, _r, _p, _q = parse_ws_url(WS_URL)
        factory = WampWebSocketClientFactory(lambda: session, url=WS_URL, serializers=[ser])
        factory.setProtocolOptions(openHandshakeTimeout=STEP_TIMEOUT, closeHandshakeTimeout=1.0)
    else:
        host, port = RS_HOST, RS_PORT
        factory = WampRawSocketClientFactory(lambda: session, serializer=ser)
    await within(loop.create_connection(factory, host, port), "connect")
    await within(
        asyncio.wait({session.joined, session.disconnected}, return_when=asyncio.FIRST_COMPLETED),
        "WELCOME or ABORT",
    )
    return session


class Backend:
    """The trusted component: authenticator and authorizer, counting calls."""

    def __init__(self):
        self.authorize_calls = {}
        self.authenticate_calls = []
        self.transports = []

    def authenticate(self, realm, authid, details):
        self.authenticate_calls.append((realm, authid, details.get("authmethod")))
        self.transports.append(details.get("transport"))
        if details.get("authmethod") == "wampcra":
            if authid not in CRA:
                raise ApplicationError("wamp.error.not_authorized", "no such user")
            return {"secret": CRA[authid], "role": "user"}
        if details.get("ticket") != USERS.get(authid):
            raise ApplicationError("wamp.error.not_authorized", "wrong ticket")
        return {"role": "user", "authid": authid + "@example", "extra": {"greeting": "hello"}}

    def authorize(self, session, uri, action, options):
        key = (action, uri)
        self.transports.append(session.get("transport"))
        self.authorize_calls[key] = self.authorize_calls.get(key, 0) + 1
        if session.get("authrole") != "user":
            return False
        if uri.startswith("com.example.dyn.allowed."):
            return True
        if uri == "com.example.dyn.raises":
            raise ApplicationError("com.example.oops", "authorizer bug")
        return {"allow": False}


async def start_backend():
    backend = Backend()
    s = await open_session("websocket", "json", BACKEND_REALM)
    s.joined.result()
    await within(s.register(backend.authenticate, "com.example.dyn.authenticate"), "register")
    await within(s.register(backend.authorize, "com.example.dyn.authorize"), "register")
    return backend, s


@pytest.mark.parametrize("transport,serializer", COMBOS, ids=[f"{t}-{s}" for t, s in COMBOS])
async def test_authenticator_decides_ticket_and_wampcra(transport, serializer):
    backend, b = await start_backend()
    opened = []
    try:
        joe = await open_session(transport, serializer, REALM, "joe", ["ticket"], "joe-ticket")
        opened.append(joe)
        details = joe.joined.result()
        assert details.authid == "joe@example"
        assert details.authrole == "user"
        assert details.authmethod == "ticket"
        assert details.authprovider == "dynamic"
        assert details.authextra == {"greeting": "hello"}
        assert (REALM, "joe", "ticket") in backend.authenticate_calls
        # Crossbar.io-style transport details.
        t = backend.transports[-1]
        assert t["channel_framing"] == transport and t["type"] == transport
        assert t["channel_serializer"] == serializer
        assert t["protocol"] == "wamp.2." + serializer
        assert t["channel_type"] == "tcp" and t["is_secure"] is False
        assert t["peer"].startswith("tcp4:127.0.0.1:")
        assert t["peer_cert"] is None

        peter = await open_session(transport, serializer, REALM, "peter", ["wampcra"], "secret123")
        opened.append(peter)
        details = peter.joined.result()
        assert (details.authid, details.authmethod, details.authprovider) == (
            "peter",
            "wampcra",
            "dynamic",
        )

        for authid, methods, secret in [
            ("joe", ["ticket"], "wrong"),
            ("peter", ["wampcra"], "wrong"),
            ("nobody", ["wampcra"], "x"),
        ]:
            s = await open_session(transport, serializer, REALM, authid, methods, secret)
            opened.append(s)
            await within(s.disconnected, "ABORT")
            assert not s.joined.done() or s.joined.exception() is not None
            assert s.leave_details is not None
            assert s.leave_details.reason == "wamp.error.not_authorized"
    finally:
        for s in opened + [b]:
            await disconnect(s)


async def test_authorizer_decides_and_is_cached():
    backend, b = await start_backend()
    opened = []
    try:
        callee = await open_session("websocket", "json", REALM, "joe", ["ticket"], "joe-ticket")
        caller = await open_session("rawsocket", "msgpack", REALM, "joe", ["ticket"], "joe-ticket")
        opened += [callee, caller]
        await within(
            callee.register(lambda x: x * 2, "com.example.dyn.allowed.double"), "register"
        )
        results = await within(
            asyncio.gather(*(caller.call("com.example.dyn.allowed.double", i) for i in range(20))),
            "20 calls",
        )
        assert results == [i * 2 for i in range(20)]
        assert backend.authorize_calls[("call", "com.example.dyn.allowed.double")] == 1
        assert backend.authorize_calls[("register", "com.example.dyn.allowed.double")] == 1
        assert {t["channel_framing"] for t in backend.transports} == {"websocket", "rawsocket"}

        with pytest.raises(ApplicationError) as e:
            await within(caller.call("com.example.dyn.denied"), "denied call")
        assert e.value.error == "wamp.error.not_authorized"
        with pytest.raises(ApplicationError) as e:
            await within(caller.call("com.example.dyn.raises"), "failing authorizer")
        assert e.value.error == "wamp.error.authorization_failed"
        with pytest.raises(ApplicationError) as e:
            await within(caller.subscribe(lambda: None, "com.example.dyn.topic"), "subscribe")
        assert e.value.error == "wamp.error.not_authorized"
        # The session carries on after refusals.
        assert await within(caller.call("com.example.dyn.allowed.double", 21), "call") == 42
    finally:
        for s in opened + [b]:
            await disconnect(s)

