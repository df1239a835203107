// Autobahn|JS over RawSocket (TCP). Autobahn|JS's RawSocket transport only
// speaks json (it JSON.stringify()s every message itself).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  Inbox,
  TEST_TIMEOUT,
  autobahn,
  expectError,
  payloadArgs,
  payloadKwargs,
  peersFor,
  resultParts,
  uri,
  within,
} from './lib/wamp.mjs';

const RS = { transport: 'rawsocket' };

test('rawsocket: pubsub and rpc round trip [json]', { timeout: TEST_TIMEOUT }, async (t) => {
  const peers = peersFor(t);
  const a = await peers.connect('json', RS);
  const b = await peers.connect('json', RS);

  const topic = uri('rs.pubsub');
  const inbox = new Inbox();
  await within(a.subscribe(topic, inbox.handler), 'SUBSCRIBED');
  const pub = await within(b.publish(topic, payloadArgs(), payloadKwargs(), { acknowledge: true }), 'PUBLISHED');
  assert.ok(Number.isInteger(pub.id) && pub.id >= 1);
  const ev = await inbox.next('EVENT');
  assert.deepStrictEqual(ev.args, payloadArgs());
  assert.deepStrictEqual(ev.kwargs, payloadKwargs());

  const proc = uri('rs.echo');
  await within(
    a.register(proc, (args, kwargs) => new autobahn.Result(args, kwargs)),
    'REGISTERED',
  );
  const out = resultParts(await within(b.call(proc, payloadArgs(), payloadKwargs()), 'RESULT'));
  assert.deepStrictEqual(out.args, payloadArgs());
  assert.deepStrictEqual(out.kwargs, payloadKwargs());

  const failing = uri('rs.fails');
  await within(
    a.register(failing, () => {
      throw new autobahn.Error('junction.interop.error.rs', ['why'], { code: 3 });
    }),
    'REGISTERED',
  );
  const err = await expectError(b.call(failing), 'CALL');
  assert.equal(err.error, 'junction.interop.error.rs');
  assert.deepStrictEqual(err.args, ['why']);
  assert.deepStrictEqual(err.kwargs, { code: 3 });

  const missing = await expectError(b.call(uri('rs.nobody_home')), 'CALL');
  assert.equal(missing.error, 'wamp.error.no_such_procedure');
});

test('rawsocket <-> websocket: events and calls cross transports', { timeout: TEST_TIMEOUT }, async (t) => {
  const peers = peersFor(t);
  const rs = await peers.connect('json', RS);
  const ws = await peers.connect('cbor');

  const topic = uri('rs.cross');
  const inbox = new Inbox();
  await within(ws.subscribe(topic, inbox.handler), 'SUBSCRIBED');
  await within(rs.publish(topic, ['from rawsocket', 1.5], { n: 7 }, { acknowledge: true }), 'PUBLISHED');
  const ev = await inbox.next('EVENT');
  assert.deepStrictEqual(ev.args, ['from rawsocket', 1.5]);
  assert.deepStrictEqual(ev.kwargs, { n: 7 });

  const proc = uri('rs.cross.echo');
  await within(rs.register(proc, (args, kwargs) => new autobahn.Result(args, kwargs)), 'REGISTERED');
  const out = resultParts(await within(ws.call(proc, ['x', null], { y: [true] }), 'RESULT'));
  assert.deepStrictEqual(out.args, ['x', null]);
  assert.deepStrictEqual(out.kwargs, { y: [true] });
});
