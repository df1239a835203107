// Publish & subscribe between Autobahn|JS sessions, for every serializer
// Autobahn|JS supports on Node (WebSocket).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  Inbox,
  JS_SERIALIZERS,
  MAX_SAFE,
  TEST_TIMEOUT,
  payloadArgs,
  payloadKwargs,
  peersFor,
  uri,
  within,
} from './lib/wamp.mjs';

const ACK = { acknowledge: true };

for (const ser of JS_SERIALIZERS) {
  test(`pubsub: args/kwargs arrive unchanged [${ser}]`, { timeout: TEST_TIMEOUT }, async (t) => {
    const peers = peersFor(t);
    const sub = await peers.connect(ser);
    const pub = await peers.connect(ser);
    const topic = uri('pubsub.payload');
    const inbox = new Inbox();
    await within(sub.subscribe(topic, inbox.handler), 'SUBSCRIBED');

    const cases = [
      [payloadArgs(), payloadKwargs()],
      [['only', 'args', 2 ** 53], {}], // 2^53 itself: JS<->JS only (see README)
      [[], { only: 'kwargs', n: -MAX_SAFE }],
      [[], {}],
    ];
    for (const [args, kwargs] of cases) {
      await within(pub.publish(topic, args, kwargs, ACK), 'PUBLISHED');
      const ev = await inbox.next('EVENT');
      assert.deepStrictEqual(ev.args, args);
      assert.deepStrictEqual(ev.kwargs, kwargs);
    }
  });

  test(`pubsub: acknowledged publish returns a publication id [${ser}]`, { timeout: TEST_TIMEOUT }, async (t) => {
    const peers = peersFor(t);
    const sub = await peers.connect(ser);
    const pub = await peers.connect(ser);
    const topic = uri('pubsub.ack');
    const inbox = new Inbox();
    await within(sub.subscribe(topic, inbox.handler), 'SUBSCRIBED');

    const p1 = await within(pub.publish(topic, [1], {}, ACK), 'PUBLISHED');
    const p2 = await within(pub.publish(topic, [2], {}, ACK), 'PUBLISHED');
    for (const p of [p1, p2]) {
      assert.ok(Number.isInteger(p.id) && p.id >= 1 && p.id <= 2 ** 53, `publication id ${p.id}`);
    }
    assert.notEqual(p1.id, p2.id);
    for (const [arg, p] of [
      [1, p1],
      [2, p2],
    ]) {
      const ev = await inbox.next('EVENT');
      assert.deepStrictEqual(ev.args, [arg]);
      assert.equal(ev.details.publication, p.id, 'EVENT publication id = PUBLISHED id');
    }
  });

  test(`pubsub: publisher does not get its own event [${ser}]`, { timeout: TEST_TIMEOUT }, async (t) => {
    const peers = peersFor(t);
    const pub = await peers.connect(ser);
    const other = await peers.connect(ser);
    const topic = uri('pubsub.exclude_me');
    const markerTopic = uri('pubsub.exclude_me.marker');
    const own = new Inbox();
    const others = new Inbox();
    const marker = new Inbox();
    await within(pub.subscribe(topic, own.handler), 'SUBSCRIBED');
    await within(pub.subscribe(markerTopic, marker.handler), 'SUBSCRIBED');
    await within(other.subscribe(topic, others.handler), 'SUBSCRIBED');

    await within(pub.publish(topic, ['hello'], {}, ACK), 'PUBLISHED');
    assert.deepStrictEqual((await others.next('EVENT at the other subscriber')).args, ['hello']);
    // barrier: a later event reached the publisher's session
    await within(other.publish(markerTopic, ['marker'], {}, ACK), 'PUBLISHED');
    assert.deepStrictEqual((await marker.next('marker EVENT')).args, ['marker']);
    await own.assertEmpty('EVENT delivered to its own publisher');
  });

  test(`pubsub: unsubscribe stops delivery [${ser}]`, { timeout: TEST_TIMEOUT }, async (t) => {
    const peers = peersFor(t);
    const sub = await peers.connect(ser);
    const pub = await peers.connect(ser);
    const topic = uri('pubsub.unsubscribe');
    const markerTopic = uri('pubsub.unsubscribe.marker');
    const inbox = new Inbox();
    const marker = new Inbox();
    const subscription = await within(sub.subscribe(topic, inbox.handler), 'SUBSCRIBED');
    await within(sub.subscribe(markerTopic, marker.handler), 'SUBSCRIBED');

    await within(pub.publish(topic, ['before'], {}, ACK), 'PUBLISHED');
    assert.deepStrictEqual((await inbox.next('EVENT')).args, ['before']);

    await within(sub.unsubscribe(subscription), 'UNSUBSCRIBED');
    await within(pub.publish(topic, ['after'], {}, ACK), 'PUBLISHED');
    await within(pub.publish(markerTopic, ['marker'], {}, ACK), 'PUBLISHED');
    assert.deepStrictEqual((await marker.next('marker EVENT')).args, ['marker']);
    await inbox.assertEmpty('EVENT after UNSUBSCRIBE');
  });
}
