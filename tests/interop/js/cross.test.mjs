// Cross-client: Autobahn|JS (this process) <-> Autobahn|Python (child process,
// ../python/peers/peer.py run with the interop venv's python).
//
// Every pairing uses a different serializer on each side where possible, so
// the router also converts between serializers.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  Inbox,
  autobahn,
  binaryArgs,
  binaryKwargs,
  expectError,
  payloadArgs,
  payloadKwargs,
  peersFor,
  pyTypes,
  resultParts,
  uri,
  within,
} from './lib/wamp.mjs';

// [JS serializer (WebSocket), Python serializer, Python transport]
const PAIRS = [
  ['json+binary', 'msgpack', 'rawsocket'],
  ['msgpack', 'cbor', 'websocket'],
  ['cbor', 'json', 'rawsocket'],
  ['json', 'json', 'websocket'], // stock Autobahn|JS JSON: no binary values
];
const TIMEOUT = 12000; // includes starting a Python interpreter

function payload(jsSer, { fromPython = false } = {}) {
  const args = payloadArgs();
  const kwargs = payloadKwargs();
  if (jsSer !== 'json') {
    args.push(...binaryArgs());
    kwargs.binary = binaryKwargs();
  }
  if (fromPython) {
    // A Python int of +-2^53 arrives in JS as a Number (json, msgpack) or, with
    // the `cbor` package, as a BigInt (it decodes integers beyond 2^53-1 so).
    // The other way round Autobahn|JS would send it as a float (msgpack/cbor).
    args.push(2 ** 53, -(2 ** 53));
  }
  return { args, kwargs };
}

// What JS receives for a payload that Python sent.
function asReceivedByJs(jsSer, sent) {
  if (jsSer !== 'cbor') return sent;
  const big = (v) => (typeof v === 'number' && Math.abs(v) === 2 ** 53 ? BigInt(v) : v);
  return { args: sent.args.map(big), kwargs: sent.kwargs };
}

function checkReported(msg, expected, what) {
  assert.deepStrictEqual(msg.args, expected.args, `${what}: args`);
  assert.deepStrictEqual(msg.kwargs, expected.kwargs, `${what}: kwargs`);
  assert.deepStrictEqual(msg.types, { args: pyTypes(expected.args), kwargs: pyTypes(expected.kwargs) }, `${what}: Python types`);
}

for (const [jsSer, pySer, pyTransport] of PAIRS) {
  const tag = `[js ${jsSer} / py ${pySer} ${pyTransport}]`;

  test(`cross: Python caller -> JS callee ${tag}`, { timeout: TIMEOUT }, async (t) => {
    const peers = peersFor(t);
    const callee = await peers.connect(jsSer);
    const proc = uri('cross.js_callee');
    const seen = new Inbox();
    await within(
      callee.register(proc, (args, kwargs) => {
        seen.push({ args, kwargs });
        return new autobahn.Result(args, kwargs);
      }),
      'REGISTERED',
    );
    await within(
      callee.register(`${proc}.fail`, (args, kwargs) => {
        throw new autobahn.Error('junction.interop.error.from_js', args, kwargs);
      }),
      'REGISTERED',
    );

    // (no 2^53 here: the JS callee echoes it back, and Autobahn|JS can't send it as an integer)
    const sent = payload(jsSer);
    const errPayload = { args: ['bad ☹', 7, 0.5], kwargs: { why: { deep: [null, true] } } };
    const py = peers.python({
      role: 'caller',
      transport: pyTransport,
      serializer: pySer,
      calls: [
        { procedure: proc, args: sent.args, kwargs: sent.kwargs },
        { procedure: `${proc}.fail`, ...errPayload },
      ],
    });

    const result = await py.next('result');
    const inv = await seen.next('INVOCATION from Python');
    assert.deepStrictEqual(inv.args, sent.args, 'JS callee args');
    assert.deepStrictEqual(inv.kwargs, sent.kwargs, 'JS callee kwargs');
    checkReported(result, sent, 'Python caller result');

    const error = await py.next('error');
    assert.equal(error.error, 'junction.interop.error.from_js');
    checkReported(error, errPayload, 'Python caller error');
    await py.finish();
  });

  test(`cross: JS caller -> Python callee ${tag}`, { timeout: TIMEOUT }, async (t) => {
    const peers = peersFor(t);
    const caller = await peers.connect(jsSer);
    const proc = uri('cross.py_callee');
    const py = peers.python({ role: 'callee', transport: pyTransport, serializer: pySer, uri: proc, count: 2 });
    await py.next('ready');

    const sent = payload(jsSer);
    const res = resultParts(await within(caller.call(proc, sent.args, sent.kwargs), 'RESULT from Python'));
    checkReported(await py.next('invocation'), sent, 'Python callee got');
    assert.deepStrictEqual(res.args, sent.args, 'result args');
    assert.deepStrictEqual(res.kwargs, sent.kwargs, 'result kwargs');

    const errArgs = ['bad ☹', 7, 0.5];
    const errKwargs = { why: { deep: [null, true] } };
    const err = await expectError(caller.call(`${proc}.fail`, errArgs, errKwargs), 'ERROR from Python');
    assert.equal(err.error, 'junction.interop.error.from_python');
    assert.deepStrictEqual(err.args, errArgs);
    assert.deepStrictEqual(err.kwargs, errKwargs);
    await py.next('invocation');
    await py.finish();
  });

  test(`cross: Python publisher -> JS subscriber ${tag}`, { timeout: TIMEOUT }, async (t) => {
    const peers = peersFor(t);
    const sub = await peers.connect(jsSer);
    const topic = uri('cross.py_pub');
    const inbox = new Inbox();
    await within(sub.subscribe(topic, inbox.handler), 'SUBSCRIBED');

    const sent = payload(jsSer, { fromPython: true });
    const py = peers.python({ role: 'publisher', transport: pyTransport, serializer: pySer, uri: topic, ...sent });
    const published = await py.next('published');
    const ev = await inbox.next('EVENT from Python', 8000);
    const expected = asReceivedByJs(jsSer, sent);
    assert.deepStrictEqual(ev.args, expected.args);
    assert.deepStrictEqual(ev.kwargs, expected.kwargs);
    assert.equal(ev.details.publication, published.publication);
    await py.finish();
  });

  test(`cross: JS publisher -> Python subscriber ${tag}`, { timeout: TIMEOUT }, async (t) => {
    const peers = peersFor(t);
    const pub = await peers.connect(jsSer);
    const topic = uri('cross.js_pub');
    const py = peers.python({ role: 'subscriber', transport: pyTransport, serializer: pySer, uri: topic, count: 1 });
    await py.next('ready');

    const sent = payload(jsSer);
    await within(pub.publish(topic, sent.args, sent.kwargs, { acknowledge: true }), 'PUBLISHED');
    checkReported(await py.next('event'), sent, 'Python subscriber got');
    await py.finish();
  });
}
