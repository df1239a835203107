"""Advanced Profile publish & subscribe with Autobahn|Python
(WAMP-FEATURES.md 4.12-4.23): subscriber black/whitelisting, publisher
exclusion and identification, pattern-based subscriptions, acknowledged
publications, event retention, event history, session testaments, one
publication to mixed serializers, payload passthru mode, bad input.

What Autobahn|Python 26.10.2 can and can't put on the wire (README,
"Advanced pub/sub"):
  * PublishOptions has exclude/eligible (+ _authid/_authrole), exclude_me,
    retain, acknowledge; SubscribeOptions has match and get_retained.
  * no disclose_me, no ppt_*, and it checks URIs and option types before
    sending: publish_with_options() / subscribe_with_options() send raw
    Options (wampinterop.py).
  * it announces no payload_passthru_mode; connect(features=...) adds it.
  * it announces subscription_revocation but raises ProtocolError on the
    revocation form [UNSUBSCRIBED, 0, {...}], so revocation is covered with
    Autobahn|JS only (js/pubsub_advanced.test.mjs).

Cheap scenarios run on all 6 transport x serializer combinations, the rest
on WebSocket/json and RawSocket/cbor (or a fixed mix of serializers).
"""

import asyncio

import cbor2
import pytest
from autobahn.wamp import message
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, SubscribeOptions

from wampinterop import (
    BINARY_ARGS,
    BINARY_KWARGS,
    IS_CROSSBAR,
    MAX_SAFE_INT,
    NO_EVENT_GRACE,
    assert_same,
    publish_with_options,
    record_raw,
    result_parts,
    subscribe_with_options,
    uri,
    within,
)

ACK = PublishOptions(acknowledge=True)
DETAILS = SubscribeOptions(details=True)
INVALID_URI = "wamp.error.invalid_uri"
INVALID_ARGUMENT = "wamp.error.invalid_argument"
PROTOCOL_VIOLATION = "wamp.error.protocol_violation"

FEW = [("websocket", "json"), ("rawsocket", "cbor")]
FEW_IDS = [f"{t}-{s}" for t, s in FEW]

MARKER = "marker"


class Events:
    """Event handler recording (args, kwargs, details) per event."""

    def __init__(self):
        self.queue: asyncio.Queue = asyncio.Queue()

    def __call__(self, *args, details=None, **kwargs):
        self.queue.put_nowait((list(args), dict(kwargs), details))

    async def get(self, what="EVENT"):
        return await within(self.queue.get(), what)

    async def labels_until(self, marker=MARKER, what="marker EVENT") -> list:
        """First args of every event up to (not including) `marker`.

        The marker is published last, by the same publisher to the same topic,
        so (WAMP ordering guarantee) every earlier event that was delivered
        at all has arrived before it.
        """
        labels = []
        while True:
            args, _kwargs, _details = await self.get(what)
            if args and args[0] == marker:
                return labels
            labels.append(args[0] if args else None)

    async def assert_empty(self, what="EVENT"):
        await asyncio.sleep(NO_EVENT_GRACE)
        assert self.queue.empty(), f"unexpected {what}: {self.queue.get_nowait()!r}"


def welcome(session):
    """(session id, authid, authrole) from WELCOME."""
    d = session.joined.result()
    return d.session, d.authid, d.authrole


async def subscribers(peers, combo, n, topic, **subopts):
    """n sessions each subscribed to topic; returns [(session, Events)]."""
    out = []
    for i in range(n):
        s = await peers.connect(*combo)
        ev = Events()
        await within(s.subscribe(ev, topic, options=SubscribeOptions(details=True, **subopts)), f"SUBSCRIBED {i}")
        out.append((s, ev))
    return out


async def expect_app_error(fut, what) -> ApplicationError:
    try:
        res = await within(fut, what)
    except ApplicationError as e:
        return e
    raise AssertionError(f"{what}: expected an ERROR, got {res!r}")


# ---------------------------------------------------------------------------
# 4.12 subscriber black- and whitelisting


async def test_blackwhite_listing_by_session(peers, combo):
    topic = uri("psadv.bwl.session")
    pub = await peers.connect(*combo)
    (a, ea), (b, eb), (c, ec) = await subscribers(peers, combo, 3, topic)
    ida, idb, idc = a._session_id, b._session_id, c._session_id
    gone = 1  # a session id that no session has (ids start at 1; 1 is astronomically unlikely)
    for s in (pub, a, b, c):
        assert s._session_id != gone

    cases = [
        ("exclude a", {"exclude": [ida]}, {"b", "c"}),
        ("eligible a,b", {"eligible": [ida, idb]}, {"a", "b"}),
        # spec example: eligible = {a, b, c} and exclude = {a} -> b and c
        ("eligible a,b,c exclude a", {"eligible": [ida, idb, idc], "exclude": [ida]}, {"b", "c"}),
        ("eligible unknown", {"eligible": [gone]}, set()),
        ("exclude unknown", {"exclude": [gone]}, {"a", "b", "c"}),
        ("exclude all", {"exclude": [ida, idb, idc]}, set()),
    ]
    for label, opts, _ in cases:
        await within(pub.publish(topic, label, options=PublishOptions(acknowledge=True, **opts)), f"PUBLISHED {label}")
    await within(pub.publish(topic, MARKER, options=ACK), "PUBLISHED marker")

    for name, ev in (("a", ea), ("b", eb), ("c", ec)):
        got = await ev.labels_until(what=f"marker EVENT at {name}")
        expected = [label for label, _, receivers in cases if name in receivers]
        assert got == expected, f"subscriber {name} got {got}, expected {expected}"


async def test_blackwhite_listing_by_authid_authrole(peers, combo):
    """Expectations come from each session's WELCOME authid/authrole, so they
    hold whether the router gives anonymous sessions distinct authids
    (Crossbar: random per session) or a shared one."""
    topic = uri("psadv.bwl.auth")
    pub = await peers.connect(*combo)
    subs = await subscribers(peers, combo, 3, topic)
    names = ["a", "b", "c"]
    who = {n: welcome(s) for n, (s, _) in zip(names, subs)}
    aid = {n: who[n][1] for n in names}
    role = {n: who[n][2] for n in names}
    nobody = "junction.interop.nobody"
    assert nobody not in aid.values() and nobody not in role.values()

    def having(pred):
        return {n for n in names if pred(n)}

    cases = [
        ("exclude_authid a", {"exclude_authid": [aid["a"]]}, having(lambda n: aid[n] != aid["a"])),
        (
            "eligible_authid a,b",
            {"eligible_authid": [aid["a"], aid["b"]]},
            having(lambda n: aid[n] in (aid["a"], aid["b"])),
        ),
        ("eligible_authid nobody", {"eligible_authid": [nobody]}, set()),
        ("exclude_authid nobody", {"exclude_authid": [nobody]}, set(names)),
        ("eligible_authrole a", {"eligible_authrole": [role["a"]]}, having(lambda n: role[n] == role["a"])),
        ("eligible_authrole nobody", {"eligible_authrole": [nobody]}, set()),
        ("exclude_authrole a", {"exclude_authrole": [role["a"]]}, having(lambda n: role[n] != role["a"])),
        ("exclude_authrole nobody", {"exclude_authrole": [nobody]}, set(names)),
        # combinations: every whitelist must admit, no blacklist may exclude
        (
            "eligible a,b,c exclude_authid b",
            {"eligible": [s._session_id for s, _ in subs], "exclude_authid": [aid["b"]]},
            having(lambda n: aid[n] != aid["b"]),
        ),
        (
            "eligible a,b eligible_authrole a",
            {"eligible": [subs[0][0]._session_id, subs[1][0]._session_id], "eligible_authrole": [role["a"]]},
            having(lambda n: n in ("a", "b") and role[n] == role["a"]),
        ),
        (
            "eligible_authid a,c exclude c",
            {"eligible_authid": [aid["a"], aid["c"]], "exclude": [subs[2][0]._session_id]},
            having(lambda n: aid[n] in (aid["a"], aid["c"]) and n != "c"),
        ),
        (
            "eligible_authrole a exclude_authrole a",
            {"eligible_authrole": [role["a"]], "exclude_authrole": [role["a"]]},
            set(),
        ),
    ]
    for label, opts, _ in cases:
        await within(pub.publish(topic, label, options=PublishOptions(acknowledge=True, **opts)), f"PUBLISHED {label}")
    await within(pub.publish(topic, MARKER, options=ACK), "PUBLISHED marker")

    for name, (_, ev) in zip(names, subs):
        got = await ev.labels_until(what=f"marker EVENT at {name}")
        expected = [label for label, _, receivers in cases if name in receivers]
        assert got == expected, f"subscriber {name} {who[name]} got {got}, expected {expected}"


# ---------------------------------------------------------------------------
# 4.13 publisher exclusion


async def test_publisher_exclusion(peers, combo):
    topic = uri("psadv.exclude_me")
    pub = await peers.connect(*combo)
    other = await peers.connect(*combo)
    own, others = Events(), Events()
    await within(pub.subscribe(own, topic, options=DETAILS), "SUBSCRIBED (publisher)")
    await within(other.subscribe(others, topic, options=DETAILS), "SUBSCRIBED (other)")

    cases = [
        ("default", {}, {"other"}),
        ("exclude_me true", {"exclude_me": True}, {"other"}),
        ("exclude_me false", {"exclude_me": False}, {"pub", "other"}),
        # an explicit blacklist wins over exclude_me=false
        ("exclude_me false, exclude pub", {"exclude_me": False, "exclude": [pub._session_id]}, {"other"}),
        ("exclude_me false, eligible pub", {"exclude_me": False, "eligible": [pub._session_id]}, {"pub"}),
    ]
    for label, opts, _ in cases:
        await within(pub.publish(topic, label, options=PublishOptions(acknowledge=True, **opts)), f"PUBLISHED {label}")
    await within(
        pub.publish(topic, MARKER, options=PublishOptions(acknowledge=True, exclude_me=False)), "PUBLISHED marker"
    )
    for name, ev in (("pub", own), ("other", others)):
        got = await ev.labels_until(what=f"marker EVENT at {name}")
        expected = [label for label, _, receivers in cases if name in receivers]
        assert got == expected, f"{name} got {got}, expected {expected}"


# ---------------------------------------------------------------------------
# 4.14 publisher identification


async def test_publisher_identification(peers, combo):
    pub = await peers.connect(*combo)
    sub = await peers.connect(*combo)
    # Crossbar ignores disclose_me and discloses under junction.interop.disclose.
    # by permission (crossbar.sh); a spec router by the flag
    loud = uri("disclose.pubsub")
    quiet = uri("psadv.quiet")
    plain = uri("psadv.disclose_me_anywhere")
    ev = Events()
    for t in (loud, quiet, plain):
        await within(sub.subscribe(ev, t, options=DETAILS), "SUBSCRIBED")
    pid, pauthid, pauthrole = welcome(pub)

    p = await within(publish_with_options(pub, loud, "hi", options={"acknowledge": True, "disclose_me": True}), "PUBLISHED")
    args, _, d = await ev.get("EVENT (disclose_me)")
    assert args == ["hi"] and d.publication == p.id
    assert (d.publisher, d.publisher_authid, d.publisher_authrole) == (pid, pauthid, pauthrole)

    # not asked for (and not configured): not disclosed
    await within(pub.publish(quiet, "hush", options=ACK), "PUBLISHED")
    args, _, d = await ev.get("EVENT (no disclose_me)")
    assert args == ["hush"]
    assert (d.publisher, d.publisher_authid, d.publisher_authrole) == (None, None, None)

    # disclose_me on a topic without any disclosure configuration
    await within(publish_with_options(pub, plain, "me", options={"acknowledge": True, "disclose_me": True}), "PUBLISHED")
    args, _, d = await ev.get("EVENT (disclose_me, unconfigured topic)")
    assert args == ["me"]
    if IS_CROSSBAR:
        # Crossbar only discloses by permission: the flag does nothing
        assert d.publisher is None
    else:
        assert (d.publisher, d.publisher_authid, d.publisher_authrole) == (pid, pauthid, pauthrole)


# ---------------------------------------------------------------------------
# 4.16 pattern-based subscriptions, 4.21 acknowledged publications


async def test_pattern_subscriptions(peers, combo):
    sub = await peers.connect(*combo)
    pub = await peers.connect(*combo)
    raw = record_raw(sub)
    base = uri("psadv.pattern")
    exact_topic = f"{base}.a.b"
    inboxes = {"exact": Events(), "prefix": Events(), "wildcard": Events()}
    subs = {
        "exact": await within(sub.subscribe(inboxes["exact"], exact_topic, options=DETAILS), "SUBSCRIBED exact"),
        "prefix": await within(
            sub.subscribe(inboxes["prefix"], f"{base}.a", options=SubscribeOptions(details=True, match="prefix")),
            "SUBSCRIBED prefix",
        ),
        "wildcard": await within(
            sub.subscribe(inboxes["wildcard"], f"{base}..b", options=SubscribeOptions(details=True, match="wildcard")),
            "SUBSCRIBED wildcard",
        ),
    }
    ids = {k: s.id for k, s in subs.items()}
    assert len(set(ids.values())) == 3, f"each (topic, match) is its own subscription: {ids}"

    # one publication matching all three -> three EVENTs, one per subscription,
    # all with the PUBLISHED publication id; topic only on the pattern ones
    p = await within(pub.publish(exact_topic, "all", options=ACK), "PUBLISHED")
    for name, ev in inboxes.items():
        args, _, d = await ev.get(f"EVENT via {name}")
        assert args == ["all"]
        assert d.publication == p.id, name
        assert d.subscription.id == ids[name]
    wire = [m for m in raw if m[0] == message.Event.MESSAGE_TYPE and m[2] == p.id]
    assert sorted(m[1] for m in wire) == sorted(ids.values()), f"EVENTs on the wire: {wire}"
    for m in wire:
        if m[1] == ids["exact"]:
            assert "topic" not in m[3], f"exact subscription EVENT has a topic: {m}"
        else:
            assert m[3].get("topic") == exact_topic, f"pattern EVENT without the concrete topic: {m}"

    # which subscriptions each topic reaches
    cases = [
        (f"{base}.a.x.y", {"prefix"}),  # deeper: prefix only
        (f"{base}.abc", {"prefix"}),  # prefix matching is by string
        (f"{base}.a", {"prefix"}),  # the prefix itself
        (f"{base}.q.b", {"wildcard"}),
        (f"{base}.q.b.c", set()),  # wildcard: same number of components
        (f"{base}.b", set()),
        (f"{base}.ab.b", {"prefix", "wildcard"}),
    ]
    for topic, _ in cases:
        await within(pub.publish(topic, topic, options=ACK), f"PUBLISHED {topic}")
    await within(pub.publish(exact_topic, MARKER, options=ACK), "PUBLISHED marker")
    for name, ev in inboxes.items():
        got = []
        while True:
            args, _, d = await ev.get(f"marker EVENT via {name}")
            if args == [MARKER]:
                break
            assert d.topic == args[0], f"{name}: details.topic {d.topic!r} for a publication to {args[0]!r}"
            got.append(args[0])
        assert got == [t for t, rs in cases if name in rs], f"{name} got {got}"


async def test_acknowledged_publications(peers, combo):
    pub = await peers.connect(*combo)
    raw = record_raw(pub)
    # no subscriber at all: still PUBLISHED
    lonely = await within(pub.publish(uri("psadv.ack.nobody"), 1, options=ACK), "PUBLISHED")
    assert type(lonely.id) is int and 1 <= lonely.id <= MAX_SAFE_INT

    # the id in PUBLISHED is the EVENT's publication id, for every subscriber
    topic = uri("psadv.ack")
    subs = await subscribers(peers, combo, 2, topic)
    ids = set()
    for i in range(3):
        p = await within(pub.publish(topic, i, options=ACK), "PUBLISHED")
        ids.add(p.id)
        for _, ev in subs:
            args, _, d = await ev.get()
            assert args == [i] and d.publication == p.id
    assert len(ids) == 3

    # an error is reported only when acknowledge is set (wamp.* is reserved)
    reserved = "wamp.junction_interop.reserved"
    pub.publish(reserved, "quiet")
    err = await expect_app_error(pub.publish(reserved, "loud", options=ACK), "ERROR for a reserved topic")
    assert err.error == INVALID_URI
    replies = [m for m in raw if m[0] in (message.Published.MESSAGE_TYPE, message.Error.MESSAGE_TYPE)]
    assert len(replies) == 1 + 3 + 1, f"a reply to the unacknowledged PUBLISH? {replies[-2:]}"


# ---------------------------------------------------------------------------
# 4.19 event retention


async def test_event_retention(peers, combo):
    pub = await peers.connect(*combo)
    topic = uri("psadv.retain")
    await within(pub.publish(topic, "r1", options=PublishOptions(acknowledge=True, retain=True)), "PUBLISHED r1")
    await within(pub.publish(topic, "r2", options=PublishOptions(acknowledge=True, retain=True)), "PUBLISHED r2")
    await within(pub.publish(topic, "not retained", options=ACK), "PUBLISHED")

    late = await peers.connect(*combo)
    raw = record_raw(late)
    ev = Events()
    s = await within(late.subscribe(ev, topic, options=SubscribeOptions(details=True, get_retained=True)), "SUBSCRIBED")
    args, kwargs, d = await ev.get("retained EVENT")
    assert args == ["r2"] and kwargs == {}, "the latest retained event"
    assert d.retained is True
    # on the wire: SUBSCRIBED, then the EVENT with Details.retained = true
    i = next(i for i, m in enumerate(raw) if m[0] == message.Subscribed.MESSAGE_TYPE and m[2] == s.id)
    events = [m for m in raw[i:] if m[0] == message.Event.MESSAGE_TYPE]
    assert events and events[0][1] == s.id and events[0][3].get("retained") is True, events

    # a subscriber without get_retained gets nothing; new events aren't "retained"
    plain_ev = Events()
    plain = await peers.connect(*combo)
    await within(plain.subscribe(plain_ev, topic, options=DETAILS), "SUBSCRIBED")
    await within(pub.publish(topic, "live", options=ACK), "PUBLISHED live")
    for e in (ev, plain_ev):
        args, _, d = await e.get("live EVENT")
        assert args == ["live"] and not d.retained
    await ev.assert_empty("second retained EVENT")

    # never a retained event the subscriber wasn't eligible for (spec MUST NOT)
    if IS_CROSSBAR:
        return  # Crossbar only checks session-id lists here and delivers it (README)
    await within(
        pub.publish(
            topic,
            "secret",
            options=PublishOptions(acknowledge=True, retain=True, eligible_authrole=["junction.interop.nobody"]),
        ),
        "PUBLISHED secret",
    )
    again = await peers.connect(*combo)
    ev3 = Events()
    await within(again.subscribe(ev3, topic, options=SubscribeOptions(details=True, get_retained=True)), "SUBSCRIBED")
    args, _, d = await ev3.get("retained EVENT")
    assert args == ["r2"] and d.retained is True, f"got {args}: only r2 may be sent"


# ---------------------------------------------------------------------------
# 4.18 event history

HISTORY_PREFIX = "junction.interop.history."


@pytest.mark.parametrize("combo", FEW, ids=FEW_IDS)
async def test_event_history(peers, combo):
    """The router must keep event history for the prefix subscription
    `junction.interop.history.` (Crossbar: realm store in crossbar.sh).

    Spec call: get_events(subscription_id, limit=, reverse=, topic=,
    after_publication=, ...) -> RESULT.Arguments = the events, oldest first,
    each {timestamp, subscription, publication, details, args, kwargs}. Crossbar: get_events(id, limit)
    only, newest first, items {time_ns, publication, topic, args, kwargs, ...}.
    """
    sub = await peers.connect(*combo)
    pub = await peers.connect(*combo)
    topic = HISTORY_PREFIX + uri("h").rsplit(".", 1)[-1]
    other_topic = HISTORY_PREFIX + uri("h").rsplit(".", 1)[-1]
    subscription = await within(
        sub.subscribe(Events(), HISTORY_PREFIX, options=SubscribeOptions(match="prefix")), "SUBSCRIBED"
    )
    pubs = []
    for i in range(3):
        p = await within(pub.publish(topic, i, f"e{i}", n=i, options=ACK), "PUBLISHED")
        pubs.append(p.id)
        await within(pub.publish(other_topic, "other", options=ACK), "PUBLISHED other")

    get_events = "wamp.subscription.get_events"
    if IS_CROSSBAR:
        res = await within(sub.call(get_events, subscription.id, limit=100), "get_events")
        mine = [e for e in res if e["topic"] == topic]
        assert [e["publication"] for e in mine] == pubs[::-1], "newest first"
        for e, i in zip(mine[::-1], range(3)):
            assert_same(e["args"], [i, f"e{i}"])
            assert_same(e["kwargs"], {"n": i})
        return

    def check(res, expected_pubs):
        # spec: RESULT.Arguments *is* the list of events (one positional
        # argument per event; ArgumentsKw may carry query info)
        items, _query_info = result_parts(res)
        assert [e["publication"] for e in items] == expected_pubs, items
        for e in items:
            i = pubs.index(e["publication"])
            assert e["subscription"] == subscription.id
            assert isinstance(e["timestamp"], str) and e["timestamp"], e
            assert isinstance(e["details"], dict)
            assert e["details"].get("topic", topic) == topic, e  # the original EVENT's details
            assert_same(e.get("args"), [i, f"e{i}"])
            assert_same(e.get("kwargs"), {"n": i})

    async def query(**kwargs):
        return await within(sub.call(get_events, subscription.id, topic=topic, **kwargs), f"get_events {kwargs}")

    check(await query(), pubs)
    check(await query(reverse=True, limit=2), pubs[:0:-1])
    check(await query(after_publication=pubs[0]), pubs[1:])
    check(await query(limit=1), pubs[:1])


# ---------------------------------------------------------------------------
# 4.22 session testaments


@pytest.mark.parametrize("combo", FEW, ids=FEW_IDS)
@pytest.mark.parametrize("how", ["goodbye", "drop"])
async def test_testament(peers, combo, how):
    watcher = await peers.connect(*combo)
    topic = uri("psadv.testament")
    ev = Events()
    await within(watcher.subscribe(ev, topic, options=DETAILS), "SUBSCRIBED")

    dying = await peers.connect(*combo)
    r1 = await within(
        dying.call("wamp.session.add_testament", topic, ["destroyed 1", MAX_SAFE_INT], {"k": "v", "b": b"\x00\xff"}),
        "add_testament",
    )
    # spec: no return value; Crossbar: the future publication id
    if IS_CROSSBAR:
        assert type(r1) is int
    else:
        assert r1 is None
    await within(dying.call("wamp.session.add_testament", topic, ["detached"], {}, scope="detached"), "add_testament")
    await within(
        dying.call("wamp.session.add_testament", topic, ["destroyed 2"], {}, scope="destroyed"), "add_testament"
    )
    await ev.assert_empty("EVENT before the session ended")

    if how == "goodbye":
        dying.leave()
    else:
        dying.drop_transport()
    args, kwargs, _ = await ev.get("first testament EVENT")
    # detached before destroyed (no session resumption), each in insertion order
    assert args == ["detached"]
    args, kwargs, _ = await ev.get("second testament EVENT")
    assert_same(args, ["destroyed 1", MAX_SAFE_INT])
    assert_same(kwargs, {"k": "v", "b": b"\x00\xff"})
    args, kwargs, _ = await ev.get("third testament EVENT")
    assert args == ["destroyed 2"]
    await ev.assert_empty("extra testament EVENT")


@pytest.mark.parametrize("combo", FEW, ids=FEW_IDS)
async def test_flush_testaments(peers, combo):
    watcher = await peers.connect(*combo)
    topic = uri("psadv.testament.flush")
    ev = Events()
    await within(watcher.subscribe(ev, topic, options=DETAILS), "SUBSCRIBED")

    dying = await peers.connect(*combo)
    add = "wamp.session.add_testament"
    await within(dying.call(add, topic, ["flushed destroyed"], {}), "add_testament")
    await within(dying.call(add, topic, ["flushed destroyed 2"], {}, scope="destroyed"), "add_testament")
    await within(dying.call(add, topic, ["flushed detached"], {}, scope="detached"), "add_testament")
    r = await within(dying.call("wamp.session.flush_testaments"), "flush_testaments")  # default: destroyed
    if IS_CROSSBAR:
        assert r == 2, "Crossbar returns the number of flushed testaments"
    else:
        assert r is None, "spec: flush_testaments returns nothing"
    await within(dying.call("wamp.session.flush_testaments", scope="detached"), "flush_testaments")
    await within(dying.call(add, topic, ["kept"], {}), "add_testament")
    dying.drop_transport()

    args, _, _ = await ev.get("testament EVENT")
    # flushed ones would have been published before "kept" (insertion order)
    assert args == ["kept"]
    await ev.assert_empty("flushed testament EVENT")


# ---------------------------------------------------------------------------
# one publication, subscribers on mixed serializers, binary payload


async def test_mixed_serializers_binary(peers):
    topic = uri("psadv.mixed")
    receivers = [("rawsocket", "msgpack"), ("websocket", "cbor"), ("websocket", "json"), ("rawsocket", "cbor")]
    subs = []
    for combo in receivers:
        s = await peers.connect(*combo)
        ev = Events()
        await within(s.subscribe(ev, topic, options=DETAILS), f"SUBSCRIBED {combo}")
        subs.append((combo, ev))
    pub = await peers.connect("websocket", "json")
    p = await within(pub.publish(topic, *BINARY_ARGS, options=ACK, **BINARY_KWARGS), "PUBLISHED")
    for combo, ev in subs:
        args, kwargs, d = await ev.get(f"EVENT at {combo}")
        assert_same(args, BINARY_ARGS, f"args at {combo}")
        assert_same(kwargs, BINARY_KWARGS, f"kwargs at {combo}")
        assert d.publication == p.id


# ---------------------------------------------------------------------------
# 4.23 payload passthru mode

PPT = {"publisher": {"payload_passthru_mode": True}, "subscriber": {"payload_passthru_mode": True}}
PPT_OPTIONS = {
    "ppt_scheme": "x_junction_interop",
    "ppt_serializer": "cbor",
    "ppt_cipher": "xsalsa20poly1305",
    "ppt_keyid": "junction-interop-key-1",
}


async def test_payload_passthru(peers):
    """A PPT publication (one binary in Arguments, no ArgumentsKw) reaches
    every subscriber with the bytes unchanged and the ppt_* keys in
    EVENT.Details. Crossbar knows only its own enc_* keys and drops ppt_*
    (README): there only the payload is checked."""
    topic = uri("psadv.ppt")
    # an opaque blob (here: what a PPT client would pack, plus bytes JSON can't carry as text)
    blob = cbor2.dumps({"args": [1, "two"], "kwargs": {"x": b"\x00\xff"}}) + b"\x00\xff\xfe"
    subs = []
    for combo in [("websocket", "json"), ("rawsocket", "msgpack"), ("websocket", "cbor")]:
        s = await peers.connect(*combo, features=PPT)
        raw = record_raw(s)
        ev = Events()
        await within(s.subscribe(ev, topic, options=DETAILS), f"SUBSCRIBED {combo}")
        subs.append((combo, raw, ev))
    pub = await peers.connect("websocket", "json", features=PPT)
    p = await within(publish_with_options(pub, topic, blob, options={"acknowledge": True, **PPT_OPTIONS}), "PUBLISHED")
    for combo, raw, ev in subs:
        args, kwargs, d = await ev.get(f"EVENT at {combo}")
        assert_same(args, [blob], f"payload at {combo}")
        assert kwargs == {}
        wire = next(m for m in raw if m[0] == message.Event.MESSAGE_TYPE and m[2] == p.id)
        assert_same(wire[4:], [[blob]], f"EVENT at {combo}: exactly one binary in Arguments, no ArgumentsKw")
        if not IS_CROSSBAR:
            got = {k: v for k, v in wire[3].items() if k.startswith("ppt_")}
            assert got == PPT_OPTIONS, f"EVENT.Details ppt_* at {combo}: {wire[3]}"


@pytest.mark.skipif(IS_CROSSBAR, reason="Crossbar doesn't know ppt_* and delivers such an event as a normal one")
async def test_payload_passthru_unannounced(peers):
    """Spec 4.23: a publisher that uses PPT without announcing
    payload_passthru_mode in HELLO commits a protocol violation (ABORT)."""
    combo = ("websocket", "json")
    topic = uri("psadv.ppt.unannounced")
    watcher = await peers.connect(*combo, features=PPT)
    ev = Events()
    await within(watcher.subscribe(ev, topic, options=DETAILS), "SUBSCRIBED")
    _, check = await bystander(peers, combo)
    offender = await peers.connect(*combo)  # stock Autobahn HELLO: no payload_passthru_mode
    fut = publish_with_options(offender, topic, b"\x00opaque", options={"acknowledge": True, **PPT_OPTIONS})
    got = await expect_refused(offender, fut, "PPT PUBLISH without announcing the feature")
    assert got == f"ABORT {PROTOCOL_VIOLATION}", got
    await check("after the unannounced PPT")
    await within(watcher.publish(topic, MARKER, options=PublishOptions(acknowledge=True, exclude_me=False)), "marker")
    assert await ev.labels_until() == [], "the PPT event was delivered"


async def test_subscription_revocation():
    pytest.skip(
        "Autobahn|Python 26.10.2 announces subscription_revocation but raises ProtocolError "
        "on [UNSUBSCRIBED, 0, {...}]; covered with Autobahn|JS (pubsub_advanced.test.mjs)"
    )


# ---------------------------------------------------------------------------
# bad input: the offender gets the error, nobody else notices


async def bystander(peers, combo):
    """A subscriber + publisher pair on their own topic; check() proves the
    router still serves them."""
    topic = uri("psadv.bystander")
    sub = await peers.connect(*combo)
    pub = await peers.connect(*combo)
    ev = Events()
    await within(sub.subscribe(ev, topic, options=DETAILS), "SUBSCRIBED bystander")

    async def check(label):
        await within(pub.publish(topic, label, options=ACK), "PUBLISHED bystander")
        args, _, _ = await ev.get(f"bystander EVENT after {label}")
        assert args == [label]

    return ev, check


async def expect_refused(session, fut, what):
    """Wait until the router refused a request; return what it did, read off
    the wire: the ERROR's URI, "ABORT <reason>", or "closed without ABORT".
    Spec / Junction: ERROR and the session goes on (or, for malformed
    options, ABORT protocol_violation). Crossbar: its message parser rejects
    it and drops the connection without ERROR or ABORT (README)."""
    closed = asyncio.ensure_future(asyncio.shield(session.disconnected))
    try:
        done, _ = await asyncio.wait({fut, closed}, timeout=3, return_when=asyncio.FIRST_COMPLETED)
        assert done, f"{what}: neither an ERROR nor a close within 3 s"
        replies = [m for m in session.received if isinstance(m, (message.Error, message.Abort))]
        if IS_CROSSBAR:
            await within(asyncio.shield(session.disconnected), f"{what}: Crossbar drops the connection")
            assert not replies, f"{what}: Crossbar answered {replies}"
            return "dropped"
        if replies:
            m = replies[0]
            return m.error if isinstance(m, message.Error) else f"ABORT {m.reason}"
        if fut in done and not fut.exception():
            raise AssertionError(f"{what}: accepted ({fut.result()!r})")
        return "closed without ABORT"
    finally:
        closed.cancel()
        if not fut.done():
            fut.cancel()
        elif not fut.cancelled():
            fut.exception()  # retrieved: no "exception never retrieved" noise


BAD_URIS = ["junction.interop..empty", "junction.interop.white space", "junction.interop.hash#tag"]


@pytest.mark.parametrize("combo", FEW, ids=FEW_IDS)
@pytest.mark.parametrize("bad", BAD_URIS, ids=["empty-component", "whitespace", "hash"])
async def test_bad_topic_uri(peers, combo, bad):
    _, check = await bystander(peers, combo)
    offender = await peers.connect(*combo)
    got = await expect_refused(
        offender, publish_with_options(offender, bad, "x", options={"acknowledge": True}), f"PUBLISH to {bad!r}"
    )
    if not IS_CROSSBAR:
        assert got == INVALID_URI, f"PUBLISH to {bad!r}: {got}"
        # still usable: the same session's SUBSCRIBE to a bad (exact) URI is refused too
        got = await expect_refused(
            offender, subscribe_with_options(offender, Events(), bad, options={}), f"SUBSCRIBE to {bad!r}"
        )
        assert got == INVALID_URI, f"SUBSCRIBE to {bad!r}: {got}"
        ok = await within(offender.publish(uri("psadv.after_bad"), 1, options=ACK), "PUBLISHED after the ERROR")
        assert ok.id
    await check("after bad uri")


BAD_OPTIONS = [
    ("publish", {"exclude": "not a list"}),
    ("publish", {"exclude": ["not an id"]}),
    ("publish", {"eligible": 12345}),
    ("publish", {"eligible_authid": [1, 2]}),
    ("publish", {"exclude_authrole": "anonymous"}),
    ("subscribe", {"match": "fuzzy"}),
    ("subscribe", {"match": 1}),
]


BAD_OPTIONS_IDS = [f"{k}-{list(o)[0]}-{i}" for i, (k, o) in enumerate(BAD_OPTIONS)]


@pytest.mark.parametrize("kind,options", BAD_OPTIONS, ids=BAD_OPTIONS_IDS)
async def test_bad_options(peers, kind, options):
    """Wrong-typed black/whitelist options and an unknown match policy. The spec
    names no outcome: ERROR wamp.error.invalid_argument (the session goes on)
    and ABORT wamp.error.protocol_violation (the session ends) are both
    accepted for Junction. Nobody else may notice, and no EVENT goes out."""
    combo = ("websocket", "json")
    topic = uri("psadv.bad_options")
    watcher = await peers.connect(*combo)
    ev = Events()
    await within(watcher.subscribe(ev, topic, options=DETAILS), "SUBSCRIBED")
    _, check = await bystander(peers, combo)
    offender = await peers.connect(*combo)
    if kind == "publish":
        fut = publish_with_options(offender, topic, "must not arrive", options={"acknowledge": True, **options})
    else:
        fut = subscribe_with_options(offender, Events(), uri("psadv.bad_match"), options=options)
    got = await expect_refused(offender, fut, f"{kind.upper()} with {options}")
    if not IS_CROSSBAR:
        assert got in (INVALID_ARGUMENT, f"ABORT {PROTOCOL_VIOLATION}"), f"{kind.upper()} with {options}: {got}"
        if got == INVALID_ARGUMENT:
            ok = await within(offender.publish(uri("psadv.after_bad"), 1, options=ACK), "PUBLISHED after the ERROR")
            assert ok.id
    await check("after bad options")
    await within(watcher.publish(topic, MARKER, options=PublishOptions(acknowledge=True, exclude_me=False)), "marker")
    assert await ev.labels_until() == [], "an EVENT from the refused PUBLISH"
