"""TLS: Autobahn|Python over a real TLS connection (wss://, and RawSocket over
TLS on the same port), checking the router's certificate against a test CA.

Needs WAMP_WSS_URL (e.g. wss://localhost:8443/ws) and WAMP_TLS_CA (the CA's PEM
file); skipped without them (e.g. against Crossbar, which the suite runs without
TLS).
"""

import asyncio
import os
import ssl

import pytest
import txaio
from autobahn.asyncio.rawsocket import WampRawSocketClientFactory
from autobahn.asyncio.websocket import WampWebSocketClientFactory
from autobahn.wamp.types import ComponentConfig, PublishOptions
from autobahn.websocket.util import parse_url as parse_ws_url

from wampinterop import REALM, SERIALIZERS, STEP_TIMEOUT, Client, Inbox, disconnect, uri, within

WSS_URL = os.environ.get("WAMP_WSS_URL")
TLS_CA = os.environ.get("WAMP_TLS_CA")

pytestmark = pytest.mark.skipif(
    not (WSS_URL and TLS_CA), reason="WAMP_WSS_URL and WAMP_TLS_CA are not set"
)


def tls_context() -> ssl.SSLContext:
    """Trusts the test CA only; host names are checked."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=TLS_CA)
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    return ctx


async def connect_tls(transport: str, serializer: str, ctx: ssl.SSLContext) -> Client:
    loop = asyncio.get_running_loop()
    txaio.config.loop = loop  # each test runs on a fresh loop
    session = Client(ComponentConfig(realm=REALM))
    session.serializer_name = serializer
    session.transport_name = transport + "-tls"
    ser = SERIALIZERS[serializer]()
    is_secure, host, port, _resource, _path, _params = parse_ws_url(WSS_URL)
    assert is_secure, WSS_URL
    if transport == "websocket":
        factory = WampWebSocketClientFactory(lambda: session, url=WSS_URL, serializers=[ser])
        factory.setProtocolOptions(openHandshakeTimeout=STEP_TIMEOUT, closeHandshakeTimeout=1.0)
    else:
        factory = WampRawSocketClientFactory(lambda: session, serializer=ser)
    where = f"{transport} over TLS to {host}:{port}"
    tr, _proto = await within(
        loop.create_connection(factory, host, port, ssl=ctx, server_hostname=host), where
    )
    try:
        await within(session.joined, f"WELCOME on {where}")
    except BaseException:
        tr.abort()
        raise
    return session


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest.mark.parametrize("serializer", ["json", "msgpack"])
async def test_call_and_pubsub_over_tls(transport, serializer):
    ctx = tls_context()
    a = await connect_tls(transport, serializer, ctx)
    b = await connect_tls(transport, serializer, ctx)
    try:
        # the transport under the session really is TLS
        assert a._transport.transport.get_extra_info("ssl_object") is not None

        proc = uri("tls.add")
        await within(a.register(lambda x, y: x + y, proc), "REGISTERED")
        assert await within(b.call(proc, 20, 22), "RESULT") == 42

        topic = uri("tls.news")
        inbox = Inbox()
        await within(a.subscribe(inbox, topic), "SUBSCRIBED")
        await within(
            b.publish(topic, "over", "tls", options=PublishOptions(acknowledge=True)),
            "PUBLISHED",
        )
        args, _kwargs = await inbox.get("EVENT")
        assert args == ["over", "tls"]
    finally:
        await disconnect(a)
        await disconnect(b)


async def test_untrusted_certificate_is_refused():
    # the default context trusts the system roots, not the test CA
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    with pytest.raises(ssl.SSLError):
        await connect_tls("websocket", "json", ctx)
