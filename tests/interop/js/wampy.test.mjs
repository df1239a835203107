// wampy.js 8.0.2 (WebSocket, json): progressive call invocations, which no
// Autobahn client can send, plus what wampy does that Autobahn|JS can't
// (cancel with mode killnowait) and its progressive-results caller.
//
// wampy 8.0.2 facts (README, "wampy.js"):
//  * progressiveCall() refuses to run unless the router's WELCOME announces
//    dealer.features.progressive_call_invocations.
//  * its HELLO does NOT announce progressive_call_invocations (caller or
//    callee) nor call_canceling (callee), although it implements the former.
//    A spec router must refuse such a call (protocol violation for the
//    caller, feature_not_supported for the callee), so the progressive
//    invocation test adds the missing announcements to wampy's HELLO.
//  * its callee answers every INVOCATION (each chunk included) with a YIELD;
//    so the callee acknowledges each chunk with a progressive result.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Wampy } from 'wampy';

import { IS_CROSSBAR, Inbox, REALM, WS_URL, peersFor, sleep, uri, within } from './lib/wamp.mjs';

const TIMEOUT = 10000;
const CANCELED = 'wamp.error.canceled';

/** A wampy session on WebSocket/json, closed in t.after(). */
async function wampy(t, { announce = {} } = {}) {
  const w = new Wampy(WS_URL, {
    realm: REALM,
    ws: globalThis.WebSocket, // the suite's tracked `ws` class (lib/wamp.mjs)
    autoReconnect: false,
  });
  for (const [role, features] of Object.entries(announce)) {
    Object.assign(w._wamp_features.roles[role].features, features);
  }
  t.after(async () => {
    try {
      await within(w.disconnect(), 'wampy GOODBYE', 2000);
    } catch {
      // already gone
    }
  });
  await within(w.connect(), 'wampy WELCOME');
  return w;
}

test('wampy: progressive results from a Python callee', { timeout: TIMEOUT + 2000 }, async (t) => {
  const peers = peersFor(t);
  const base = uri('wampy.progress');
  const py = peers.python({ role: 'advanced_callee', transport: 'websocket', serializer: 'cbor', uri: base, count: 1 });
  await py.next('ready');
  const caller = await wampy(t);
  const progress = [];
  const res = await within(
    caller.call(`${base}.stream`, [3], { progress_callback: (r) => progress.push([r.argsList, r.argsDict]) }),
    'final RESULT',
  );
  assert.equal((await py.next('invocation')).receive_progress, true);
  assert.deepStrictEqual(progress, [0, 1, 2].map((i) => [[i, `step ${i}`], { i }]));
  assert.deepStrictEqual(res.argsList, ['done', 3]);
  await py.finish();
});

test('wampy: cancel with mode killnowait -> canceled at once, Python callee interrupted', { timeout: TIMEOUT + 2000 }, async (t) => {
  const peers = peersFor(t);
  const base = uri('wampy.cancel');
  const py = peers.python({ role: 'advanced_callee', transport: 'rawsocket', serializer: 'json', uri: base, count: 1 });
  await py.next('ready');
  const caller = await wampy(t);
  const call = caller.call(`${base}.hang`, ['x']);
  const reqId = caller.getOpStatus().reqId;
  call.catch(() => {}); // checked below
  await py.next('invocation');
  caller.cancel(reqId, { mode: 'killnowait' });
  const err = await within(call.then(() => assert.fail('expected an ERROR'), (e) => e), 'ERROR for the CANCELed call');
  assert.equal(err.errorUri, CANCELED, String(err));
  await py.next('interrupted'); // the callee answers 0.2 s later; that answer is dropped
  await py.finish();
  // the caller's session is fine
  assert.equal(caller.getSessionId() > 0, true);
});

test(
  'wampy: progressive call invocations (caller streams chunks, callee gets them in order)',
  {
    timeout: TIMEOUT,
    skip: IS_CROSSBAR && 'Crossbar 26.10 has no progressive call invocations (no CALL.Options.progress, feature not announced)',
  },
  async (t) => {
    const announce = { caller: { progressive_call_invocations: true }, callee: { progressive_call_invocations: true, call_canceling: true } };
    const callee = await wampy(t, { announce });
    const caller = await wampy(t, { announce });
    const dealer = caller._cache.server_wamp_features.roles.dealer.features;
    assert.equal(dealer.progressive_call_invocations, true, 'WELCOME: dealer announces progressive_call_invocations');

    const proc = uri('wampy.progressive_invocations');
    const chunks = new Inbox();
    const invocationIds = new Set();
    const received = [];
    await within(
      callee.register(proc, ({ argsList, argsDict, details }) => {
        received.push(argsList[0]);
        chunks.push({ args: argsList, kwargs: argsDict, progress: details.progress === true });
        if (details.progress) {
          // acknowledge the chunk with a progressive result
          return { argsList: ['got', argsList[0]], options: { progress: true } };
        }
        return { argsList: ['all', ...received], argsDict: { count: received.length } };
      }),
      'REGISTERED',
    );
    // INVOCATION request IDs: every chunk must reuse the first one
    const onInvocation = callee._onInvocationMessage.bind(callee);
    callee._onInvocationMessage = (msg) => {
      invocationIds.add(msg[1]);
      return onInvocation(msg);
    };

    const acks = [];
    const pc = caller.progressiveCall(proc, { argsList: [0, 'first'], argsDict: { k: 'v' } }, {
      progress_callback: (r) => acks.push(r.argsList),
    });
    pc.result.catch(() => {}); // checked below
    const first = await chunks.next('INVOCATION (chunk 0)');
    assert.deepStrictEqual(first, { args: [0, 'first'], kwargs: { k: 'v' }, progress: true });
    for (const i of [1, 2]) {
      pc.sendData({ argsList: [i] });
      assert.deepStrictEqual(await chunks.next(`INVOCATION (chunk ${i})`), { args: [i], kwargs: undefined, progress: true });
    }
    pc.sendData({ argsList: [3] }, { progress: false });
    assert.deepStrictEqual(await chunks.next('final INVOCATION'), { args: [3], kwargs: undefined, progress: false });

    const res = await within(pc.result, 'final RESULT');
    assert.deepStrictEqual(res.argsList, ['all', 0, 1, 2, 3]);
    assert.deepStrictEqual(res.argsDict, { count: 4 });
    assert.deepStrictEqual(acks, [0, 1, 2].map((i) => ['got', i]));
    assert.equal(invocationIds.size, 1, `one INVOCATION request ID for all chunks, got ${[...invocationIds]}`);
    await sleep(50);
    await chunks.assertEmpty('INVOCATION');
  },
);
