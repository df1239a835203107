// Binary payloads (Buffer / Uint8Array) with Autobahn|JS.
//
// msgpack and cbor carry Buffers natively. Stock Autobahn|JS JSON has no binary
// support, so "json+binary" plugs WAMP's "\u0000"+base64 convention into its
// JSONSerializer(replacer, reviver). Values always come back as Buffer.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  Inbox,
  TEST_TIMEOUT,
  autobahn,
  binaryArgs,
  binaryKwargs,
  peersFor,
  resultParts,
  uri,
  within,
} from './lib/wamp.mjs';

const BINARY_SERIALIZERS = ['json+binary', 'msgpack', 'cbor'];
const CROSS = [
  ['json+binary', 'msgpack'],
  ['json+binary', 'cbor'],
  ['msgpack', 'json+binary'],
  ['cbor', 'json+binary'],
  ['msgpack', 'cbor'],
  ['cbor', 'msgpack'],
];

async function pubsubBinary(t, pubSer, subSer) {
  const peers = peersFor(t);
  const sub = await peers.connect(subSer);
  const pub = await peers.connect(pubSer);
  const topic = uri('binary.pubsub');
  const inbox = new Inbox();
  await within(sub.subscribe(topic, inbox.handler), 'SUBSCRIBED');
  await within(pub.publish(topic, binaryArgs(), binaryKwargs(), { acknowledge: true }), 'PUBLISHED');
  const ev = await inbox.next('EVENT with binary payload');
  assert.deepStrictEqual(ev.args, binaryArgs());
  assert.deepStrictEqual(ev.kwargs, binaryKwargs());
}

async function rpcBinary(t, callerSer, calleeSer) {
  const peers = peersFor(t);
  const callee = await peers.connect(calleeSer);
  const caller = await peers.connect(callerSer);
  const proc = uri('binary.rpc');
  const seen = new Inbox();
  await within(
    callee.register(proc, (args, kwargs) => {
      seen.push({ args, kwargs });
      return new autobahn.Result(args, kwargs);
    }),
    'REGISTERED',
  );
  const res = await within(caller.call(proc, binaryArgs(), binaryKwargs()), 'RESULT');
  // the callee really got Buffers (not strings / objects) ...
  const inv = await seen.next('INVOCATION');
  assert.deepStrictEqual(inv.args, binaryArgs(), 'invocation args');
  assert.deepStrictEqual(inv.kwargs, binaryKwargs(), 'invocation kwargs');
  // ... and so did the caller
  const out = resultParts(res);
  assert.deepStrictEqual(out.args, binaryArgs(), 'result args');
  assert.deepStrictEqual(out.kwargs, binaryKwargs(), 'result kwargs');
}

for (const ser of BINARY_SERIALIZERS) {
  test(`binary: pubsub with Buffers [${ser}]`, { timeout: TEST_TIMEOUT }, (t) => pubsubBinary(t, ser, ser));
  test(`binary: rpc with Buffers [${ser}]`, { timeout: TEST_TIMEOUT }, (t) => rpcBinary(t, ser, ser));
}

for (const [a, b] of CROSS) {
  test(`binary: pubsub ${a} -> ${b}`, { timeout: TEST_TIMEOUT }, (t) => pubsubBinary(t, a, b));
  test(`binary: rpc ${a} -> ${b}`, { timeout: TEST_TIMEOUT }, (t) => rpcBinary(t, a, b));
}

// A plain Uint8Array (not a Buffer) is sent as bytes too. Not with cbor: the
// `cbor` package encodes a Uint8Array as a tagged typed array (tag 64), see README.
for (const [a, b] of [
  ['msgpack', 'cbor'],
  ['json+binary', 'msgpack'],
]) {
  test(`binary: Uint8Array ${a} -> ${b} arrives as bytes`, { timeout: TEST_TIMEOUT }, async (t) => {
    const peers = peersFor(t);
    const sub = await peers.connect(b);
    const pub = await peers.connect(a);
    const topic = uri('binary.uint8array');
    const inbox = new Inbox();
    await within(sub.subscribe(topic, inbox.handler), 'SUBSCRIBED');
    const bytes = new Uint8Array([0, 1, 127, 128, 255]);
    await within(pub.publish(topic, [bytes], { k: bytes }, { acknowledge: true }), 'PUBLISHED');
    const ev = await inbox.next('EVENT');
    assert.deepStrictEqual(ev.args, [Buffer.from(bytes)]);
    assert.deepStrictEqual(ev.kwargs, { k: Buffer.from(bytes) });
  });
}
