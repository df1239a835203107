"""Authentication with Autobahn|Python: ticket, WAMP-CRA (plain and salted),
WAMP-Cryptosign and WAMP-SCRAM (Autobahn's own `AuthScram`, against a user of the
`autobahn` dialect) logins on the realm `junction.auth` of
tests/interop/junction.toml.

Right credentials join and WELCOME names the authid, authrole and authmethod;
wrong ones get ABORT wamp.error.not_authorized; the role's permissions apply
(a reader may call but not register). Crossbar.io is not configured with this
realm, so the tests are skipped there.
"""

import pytest
from autobahn.wamp import auth as wamp_auth
from autobahn.wamp.exception import ApplicationError

from wampinterop import IS_CROSSBAR, uri, within

pytestmark = pytest.mark.skipif(IS_CROSSBAR, reason="the auth realm is configured for Junction only")

REALM = "junction.auth"
NOT_AUTHORIZED = "wamp.error.not_authorized"
# bytes 1..32: the test-only cryptosign seed whose public key junction.toml lists
SEED = bytes(range(1, 33))
COMBOS = [("websocket", "json"), ("rawsocket", "msgpack"), ("websocket", "cbor")]
IDS = [f"{t}-{s}" for t, s in COMBOS]


def ticket(authid, secret):
    return {
        "authmethods": ["ticket"],
        "authid": authid,
        "answer": lambda session, challenge: secret,
    }


def wampcra(authid, secret):
    def answer(session, challenge):
        assert challenge.method == "wampcra"
        key = secret
        if "salt" in challenge.extra:
            key = wamp_auth.derive_key(
                secret,
                challenge.extra["salt"],
                challenge.extra["iterations"],
                challenge.extra["keylen"],
            )
        return wamp_auth.compute_wcs(key, challenge.extra["challenge"])

    return {"authmethods": ["wampcra"], "authid": authid, "answer": answer}


def cryptosign(authid, seed, channel_binding=None):
    from autobahn.wamp.cryptosign import CryptosignKey

    key = CryptosignKey.from_bytes(seed)
    extra = {"pubkey": key.public_key()}
    if channel_binding:
        extra["channel_binding"] = channel_binding

    def answer(session, challenge):
        assert challenge.method == "cryptosign"
        # Autobahn 26: (challenge, channel_id, channel_id_type)
        return key.sign_challenge(challenge, None, None)

    spec = {"authmethods": ["cryptosign"], "authextra": extra, "answer": answer}
    if authid is not None:
        spec["authid"] = authid
    return spec


def scram(authid, password):
    """Autobahn's own WAMP-SCRAM client (method `scram`, kdf argon2id-13). It
    checks the router's `scram_server_signature` in WELCOME; `checked` records
    what that check returned (None: the signature was right)."""
    authenticator = wamp_auth.AuthScram(authid=authid, password=password)
    checked = []

    def on_welcome(session, authextra):
        result = authenticator.on_welcome(session, authextra)
        checked.append(result)
        return result

    return {
        "authmethods": ["scram"],
        "authid": authid,
        "authextra": authenticator.authextra,  # the client nonce
        "answer": authenticator.on_challenge,
        "on_welcome": on_welcome,
        "checked": checked,
    }


GOOD = [
    ("ticket", ticket("ticket-user", "ticket-secret"), "ticket-user", "writer"),
    ("wampcra", wampcra("cra-user", "cra-secret"), "cra-user", "reader"),
    ("wampcra-salted", wampcra("cra-salted", "salted-secret"), "cra-salted", "reader"),
    ("cryptosign", cryptosign("cs-user", SEED), "cs-user", "writer"),
    ("cryptosign-by-key", cryptosign(None, SEED), "cs-user", "writer"),
    ("scram", scram("scram-user", "scram-secret"), "scram-user", "reader"),
]

BAD = [
    ("ticket", ticket("ticket-user", "wrong")),
    ("ticket-unknown", ticket("nobody", "ticket-secret")),
    ("wampcra", wampcra("cra-user", "wrong")),
    ("wampcra-salted", wampcra("cra-salted", "cra-secret")),
    ("cryptosign-wrong-key", cryptosign("cs-user", bytes(32))),
    ("cryptosign-unknown-key", cryptosign(None, bytes([7]) * 32)),
    ("scram", scram("scram-user", "wrong")),
    # an unknown authid gets a challenge Autobahn answers, then ABORT
    ("scram-unknown", scram("nobody", "scram-secret")),
]


@pytest.mark.parametrize("combo", COMBOS, ids=IDS)
@pytest.mark.parametrize("name,spec,authid,authrole", GOOD, ids=[g[0] for g in GOOD])
async def test_login_succeeds(peers, combo, name, spec, authid, authrole):
    session = await peers.connect(*combo, realm=REALM, auth=spec)
    details = session.joined.result()
    assert details.authid == authid
    assert details.authrole == authrole
    assert details.authmethod == spec["authmethods"][0]


@pytest.mark.parametrize("combo", COMBOS, ids=IDS)
async def test_scram_server_signature_is_verified(peers, combo):
    spec = scram("scram-user", "scram-secret")
    session = await peers.connect(*combo, realm=REALM, auth=spec)
    details = session.joined.result()
    assert details.authmethod == "scram"
    assert "scram_server_signature" in details.authextra
    assert spec["checked"] == [None]


async def test_cryptosign_channel_binding_is_not_offered(peers):
    # Autobahn offers only tls-unique, which Junction (TLS 1.3) does not have (it
    # binds with tls-exporter, over TLS only): such a HELLO cannot use cryptosign.
    with pytest.raises(ConnectionError) as refused:
        await peers.connect(
            "websocket", "json", realm=REALM, auth=cryptosign("cs-user", SEED, "tls-unique")
        )
    assert "wamp.error.no_matching_auth_method" in str(refused.value)


@pytest.mark.parametrize("combo", COMBOS, ids=IDS)
@pytest.mark.parametrize("name,spec", BAD, ids=[b[0] for b in BAD])
async def test_wrong_credentials_are_refused(peers, combo, name, spec):
    with pytest.raises(ConnectionError) as refused:
        await peers.connect(*combo, realm=REALM, auth=spec)
    assert NOT_AUTHORIZED in str(refused.value)


async def test_role_permissions_apply(peers):
    writer = await peers.connect("websocket", "json", realm=REALM, auth=cryptosign(None, SEED))
    reader = await peers.connect("websocket", "msgpack", realm=REALM, auth=wampcra("cra-user", "cra-secret"))
    proc = uri("auth.echo")
    await within(writer.register(lambda x: x, proc), "REGISTERED")
    assert await within(reader.call(proc, 42), "RESULT") == 42
    with pytest.raises(ApplicationError) as denied:
        await within(reader.register(lambda x: x, uri("auth.mine")), "ERROR")
    assert denied.value.error == NOT_AUTHORIZED
    # anonymous is not offered on this realm
    with pytest.raises(ConnectionError) as refused:
        await peers.connect("websocket", "json", realm=REALM)
    assert "wamp.error.no_matching_auth_method" in str(refused.value)
