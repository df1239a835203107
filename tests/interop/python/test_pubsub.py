"""Publish & subscribe with Autobahn|Python, on every transport x serializer."""

import copy

from autobahn.wamp.types import PublishOptions, SubscribeOptions

from wampinterop import (
    MAX_SAFE_INT,
    PAYLOAD_ARGS,
    PAYLOAD_KWARGS,
    Inbox,
    assert_same,
    uri,
    within,
)

ACK = PublishOptions(acknowledge=True)


async def test_event_payload_roundtrip(peers, combo):
    sub = await peers.connect(*combo)
    pub = await peers.connect(*combo)
    topic = uri("pubsub.payload")
    inbox = Inbox()
    await within(sub.subscribe(inbox, topic), "SUBSCRIBED")

    # full payload, args only, kwargs only, nothing at all
    cases = [
        (PAYLOAD_ARGS, PAYLOAD_KWARGS),
        (["only", "args", MAX_SAFE_INT], {}),
        ([], {"only": "kwargs", "n": -MAX_SAFE_INT}),
        ([], {}),
    ]
    for args, kwargs in cases:
        sent_args, sent_kwargs = copy.deepcopy(args), copy.deepcopy(kwargs)
        await within(pub.publish(topic, *sent_args, options=ACK, **sent_kwargs), "PUBLISHED")
        got_args, got_kwargs = await inbox.get("EVENT")
        assert_same(got_args, args, "args")
        assert_same(got_kwargs, kwargs, "kwargs")


async def test_acknowledged_publish_returns_publication_id(peers, combo):
    sub = await peers.connect(*combo)
    pub = await peers.connect(*combo)
    topic = uri("pubsub.ack")
    inbox = Inbox()
    await within(
        sub.subscribe(inbox, topic, options=SubscribeOptions(details_arg="details")),
        "SUBSCRIBED",
    )

    p1 = await within(pub.publish(topic, 1, options=ACK), "PUBLISHED")
    p2 = await within(pub.publish(topic, 2, options=ACK), "PUBLISHED")
    for p in (p1, p2):
        assert p is not None, "acknowledge=True must yield a Publication"
        assert type(p.id) is int and 1 <= p.id <= MAX_SAFE_INT, p.id
    assert p1.id != p2.id

    # EVENT carries the same publication id that PUBLISHED returned
    for expected_arg, p in ((1, p1), (2, p2)):
        args, kwargs = await inbox.get("EVENT")
        details = kwargs.pop("details")
        assert_same(args, [expected_arg])
        assert kwargs == {}
        assert details.publication == p.id


async def test_publisher_does_not_receive_own_event(peers, combo):
    pub = await peers.connect(*combo)
    other = await peers.connect(*combo)
    topic = uri("pubsub.exclude_me")
    marker_topic = uri("pubsub.exclude_me.marker")

    own = Inbox()
    others = Inbox()
    marker = Inbox()
    await within(pub.subscribe(own, topic), "SUBSCRIBED (publisher)")
    await within(pub.subscribe(marker, marker_topic), "SUBSCRIBED (publisher marker)")
    await within(other.subscribe(others, topic), "SUBSCRIBED (other)")

    await within(pub.publish(topic, "hello", options=ACK), "PUBLISHED")
    args, _ = await others.get("EVENT at the other subscriber")
    assert_same(args, ["hello"])

    # barrier: an event published afterwards reached the publisher's session,
    # so its own event (had the router sent one) would be there already
    await within(other.publish(marker_topic, "marker", options=ACK), "PUBLISHED marker")
    args, _ = await marker.get("marker EVENT")
    assert_same(args, ["marker"])
    await own.assert_empty("EVENT delivered to its own publisher")


async def test_unsubscribe_stops_delivery(peers, combo):
    sub = await peers.connect(*combo)
    pub = await peers.connect(*combo)
    topic = uri("pubsub.unsubscribe")
    marker_topic = uri("pubsub.unsubscribe.marker")

    inbox = Inbox()
    marker = Inbox()
    subscription = await within(sub.subscribe(inbox, topic), "SUBSCRIBED")
    await within(sub.subscribe(marker, marker_topic), "SUBSCRIBED marker")

    await within(pub.publish(topic, "before", options=ACK), "PUBLISHED")
    args, _ = await inbox.get("EVENT before unsubscribe")
    assert_same(args, ["before"])

    await within(subscription.unsubscribe(), "UNSUBSCRIBED")
    assert not subscription.active

    await within(pub.publish(topic, "after", options=ACK), "PUBLISHED")
    await within(pub.publish(marker_topic, "marker", options=ACK), "PUBLISHED marker")
    args, _ = await marker.get("marker EVENT")
    assert_same(args, ["marker"])
    await inbox.assert_empty("EVENT after UNSUBSCRIBE")
