// Autobahn|JS over wss:// (Node, `ws` as the WebSocket class) with the router's
// certificate checked against a test CA. Needs WAMP_WSS_URL and WAMP_TLS_CA;
// skipped without them (e.g. against Crossbar, which the suite runs without TLS).
// Autobahn|JS's RawSocket transport has no TLS, so this is WebSocket only.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { Inbox, TEST_TIMEOUT, peersFor, resultParts, uri, within } from './lib/wamp.mjs';

const WSS_URL = process.env.WAMP_WSS_URL;
const TLS_CA = process.env.WAMP_TLS_CA;
const skip = !(WSS_URL && TLS_CA) && 'WAMP_WSS_URL and WAMP_TLS_CA are not set';

// Autobahn|JS calls `new WebSocket(url, protocols)`: this subclass adds the test
// CA as the only trusted root. Host names are still checked (ws/tls default).
const Base = globalThis.WebSocket;
const ca = TLS_CA ? readFileSync(TLS_CA) : undefined;
let trustCa = true;
globalThis.WebSocket = class extends Base {
  constructor(url, protocols, options = {}) {
    super(url, protocols, trustCa ? { ...options, ca } : options);
    // A failed TLS handshake is an 'error' event, then 'close': Autobahn|JS
    // listens for the close only, so the error must not go unhandled.
    this.on('error', () => {});
  }
};

for (const serializer of ['json', 'msgpack']) {
  test(`wss: call and pubsub [${serializer}]`, { skip, timeout: TEST_TIMEOUT }, async (t) => {
    trustCa = true;
    const peers = peersFor(t);
    const a = await peers.connect(serializer, { url: WSS_URL });
    const b = await peers.connect(serializer, { url: WSS_URL });

    const proc = uri('tls.add');
    await within(a.register(proc, (args) => args[0] + args[1]), 'REGISTERED');
    const out = resultParts(await within(b.call(proc, [20, 22]), 'RESULT'));
    assert.deepStrictEqual(out.args, [42]);

    const topic = uri('tls.news');
    const inbox = new Inbox();
    await within(a.subscribe(topic, inbox.handler), 'SUBSCRIBED');
    await within(b.publish(topic, ['over', 'tls'], {}, { acknowledge: true }), 'PUBLISHED');
    const ev = await inbox.next('EVENT');
    assert.deepStrictEqual(ev.args, ['over', 'tls']);
  });
}

test('wss: a certificate from an untrusted CA is refused', { skip, timeout: TEST_TIMEOUT }, async (t) => {
  trustCa = false;
  const peers = peersFor(t);
  await assert.rejects(peers.connect('json', { url: WSS_URL }));
  trustCa = true;
});
