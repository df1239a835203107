// Advanced Profile RPC with Autobahn|JS: progressive call results, call
// canceling, call timeout, pattern-based and shared registrations, caller
// identification (WAMP-FEATURES.md 4.1-4.8).
//
// Autobahn|JS 26.3.1 facts these tests rely on (README, "Advanced RPC"):
//  * call(..., {receive_progress: true}) -> progressive results are when.js
//    progress notifications on the returned promise.
//  * call options go onto the wire unchanged: {timeout: 1} is `timeout: 1`,
//    {disclose_me: true} is `disclose_me: true`.
//  * promise.cancel({mode}) sends [CANCEL, id, {mode}]. For any mode but
//    "kill" it rejects the promise locally at once and forgets the call, so
//    the router's ERROR then counts as a protocol violation and Autobahn|JS
//    drops its own connection: only "kill" is usable.
//  * its callee announces progressive_call_results but not call_canceling
//    and ignores INTERRUPT; a dealer may therefore withhold receive_progress
//    from it (spec 4.1), which the JS<->JS progressive test allows.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  IS_CROSSBAR,
  Inbox,
  MAX_SAFE,
  autobahn,
  expectError,
  peersFor,
  resultParts,
  uri,
  within,
} from './lib/wamp.mjs';

const CANCELED = 'wamp.error.canceled';
const TIMEOUT_URI = 'wamp.error.timeout';
const NO_SUCH_PROCEDURE = 'wamp.error.no_such_procedure';
const POLICY_CONFLICT = 'wamp.error.procedure_exists_with_different_invocation_policy';
const TIMEOUT = 10000;

const TRANSPORTS = [
  ['websocket json', 'json', {}],
  ['rawsocket json', 'json', { transport: 'rawsocket' }],
];

/** call() with receive_progress; returns {progress: [...parts], result: promise}. */
function callWithProgress(session, proc, args, kwargs) {
  const progress = [];
  const p = session.call(proc, args, kwargs, { receive_progress: true });
  // when.js progress handler (the third argument of then)
  p.then(undefined, () => {}, (r) => progress.push(resultParts(r)));
  return { progress, result: p };
}

for (const [tag, ser, opts] of TRANSPORTS) {
  test(`rpc-adv: progressive results, JS caller <- Python callee [${tag}]`, { timeout: TIMEOUT + 2000 }, async (t) => {
    const peers = peersFor(t);
    const base = uri('adv.progress_py');
    const py = peers.python({ role: 'advanced_callee', transport: 'rawsocket', serializer: 'cbor', uri: base, count: 2 });
    await py.next('ready');
    const caller = await peers.connect(ser, opts);

    const { progress, result } = callWithProgress(caller, `${base}.stream`, [3]);
    const res = await within(result, 'final RESULT');
    assert.equal((await py.next('invocation')).receive_progress, true, 'receive_progress reached the callee');
    assert.deepStrictEqual(progress, [0, 1, 2].map((i) => ({ args: [i, `step ${i}`], kwargs: { i } })));
    assert.deepStrictEqual(resultParts(res), { args: ['done', 3], kwargs: {} });

    // no receive_progress -> plain call
    const plain = await within(caller.call(`${base}.stream`, [2]), 'RESULT');
    assert.equal((await py.next('invocation')).receive_progress, false);
    assert.deepStrictEqual(resultParts(plain), { args: ['done', 2], kwargs: {} });
    await py.finish();
  });

  test(`rpc-adv: progressive results, JS caller <- JS callee [${tag}]`, { timeout: TIMEOUT }, async (t) => {
    const peers = peersFor(t);
    const callee = await peers.connect(ser, opts);
    const caller = await peers.connect(ser, opts);
    const proc = uri('adv.progress_js');
    let calleeCouldStream;
    await within(
      callee.register(proc, ([n], _kwargs, details) => {
        calleeCouldStream = typeof details.progress === 'function';
        if (calleeCouldStream) {
          for (let i = 0; i < n; i++) details.progress([i, 'ünï', MAX_SAFE], { i });
        }
        return new autobahn.Result(['done', n], { n });
      }),
      'REGISTERED',
    );
    const { progress, result } = callWithProgress(caller, proc, [3]);
    const res = await within(result, 'final RESULT');
    assert.deepStrictEqual(resultParts(res), { args: ['done', 3], kwargs: { n: 3 } });
    // Crossbar forwards receive_progress to Autobahn|JS callees; a dealer
    // that follows spec 4.1 strictly doesn't (the callee lacks call_canceling).
    // Either way the caller must see exactly what the callee sent.
    if (IS_CROSSBAR) assert.equal(calleeCouldStream, true);
    if (!calleeCouldStream) t.diagnostic('router withheld receive_progress from the Autobahn|JS callee');
    const expected = calleeCouldStream ? [0, 1, 2].map((i) => ({ args: [i, 'ünï', MAX_SAFE], kwargs: { i } })) : [];
    assert.deepStrictEqual(progress, expected);
  });

  test(`rpc-adv: pattern-based registrations [${tag}]`, { timeout: TIMEOUT }, async (t) => {
    const peers = peersFor(t);
    const callee = await peers.connect(ser, opts);
    const caller = await peers.connect(ser, opts);
    const base = uri('adv.pattern');
    const tagged = (name) => (args, _kwargs, details) => [name, details.procedure];
    const regs = [
      ['exact', `${base}.x.y`, undefined],
      ['prefix-long', `${base}.x.y`, 'prefix'],
      ['prefix-short', base, 'prefix'],
      ['wildcard', `${base}..y`, 'wildcard'],
    ];
    for (const [name, proc, match] of regs) {
      await within(callee.register(proc, tagged(name), match ? { match } : undefined), `REGISTERED ${name}`);
    }
    const cases = [
      [`${base}.x.y`, 'exact'],
      [`${base}.x.y.z`, 'prefix-long'],
      [`${base}.q.y`, 'prefix-short'], // prefix beats wildcard
    ];
    for (const [called, name] of cases) {
      const res = resultParts(await within(caller.call(called), `RESULT ${called}`));
      assert.deepStrictEqual(res.args[0], [name, called], called);
    }
    const wbase = uri('adv.wildcard');
    await within(callee.register(`${wbase}..end`, tagged('wild'), { match: 'wildcard' }), 'REGISTERED');
    const res = resultParts(await within(caller.call(`${wbase}.mid.end`), 'RESULT'));
    assert.deepStrictEqual(res.args[0], ['wild', `${wbase}.mid.end`]);
    const err = await expectError(caller.call(`${wbase}.a.b.end`), 'CALL');
    assert.equal(err.error, NO_SUCH_PROCEDURE);
  });

  test(`rpc-adv: caller disclosure (disclose_me) [${tag}]`, { timeout: TIMEOUT }, async (t) => {
    const peers = peersFor(t);
    const callee = await peers.connect(ser, opts);
    const caller = await peers.connect(ser, opts);
    // Crossbar ignores disclose_me and discloses under junction.interop.disclose.
    // by permission (crossbar.sh); a spec router by the flag
    const proc = uri('disclose.js.who').replace('junction.interop.js.', 'junction.interop.');
    const quiet = uri('adv.quiet');
    const seen = new Inbox();
    const who = (_args, _kwargs, d) => {
      seen.push({ caller: d.caller, authid: d.caller_authid, authrole: d.caller_authrole });
      return 'ok';
    };
    await within(callee.register(proc, who), 'REGISTERED');
    await within(callee.register(quiet, who), 'REGISTERED');

    assert.equal(await within(caller.call(proc, [], {}, { disclose_me: true }), 'RESULT'), 'ok');
    assert.deepStrictEqual(await seen.next('INVOCATION'), {
      caller: caller.id,
      authid: caller.welcome.authid,
      authrole: caller.welcome.authrole,
    });
    assert.equal(await within(caller.call(quiet), 'RESULT'), 'ok');
    assert.deepStrictEqual(await seen.next('INVOCATION'), { caller: undefined, authid: undefined, authrole: undefined });
  });
}

test('rpc-adv: cancel (mode kill) -> Python callee interrupted, caller gets canceled', { timeout: TIMEOUT + 2000 }, async (t) => {
  const peers = peersFor(t);
  const base = uri('adv.cancel_py');
  const py = peers.python({ role: 'advanced_callee', transport: 'websocket', serializer: 'msgpack', uri: base, count: 1 });
  await py.next('ready');
  const caller = await peers.connect('json');
  const call = caller.call(`${base}.hang`, ['x']);
  call.then(undefined, () => {}); // checked below
  await py.next('invocation');
  call.cancel({ mode: 'kill' });
  await py.next('interrupted');
  const err = await expectError(call, 'ERROR for the CANCELed call');
  assert.equal(err.error, CANCELED);
  await py.finish();
});

test('rpc-adv: call timeout -> caller gets an ERROR', { timeout: TIMEOUT }, async (t) => {
  const peers = peersFor(t);
  const callee = await peers.connect('json');
  const caller = await peers.connect('json');
  const proc = uri('adv.timeout');
  const invoked = new Inbox();
  await within(
    callee.register(proc, () => {
      invoked.push(true);
      return new Promise(() => {}); // never answers
    }),
    'REGISTERED',
  );
  // {timeout: 1}: 1 ms for a spec router, 1 s for Crossbar
  const err = await expectError(caller.call(proc, [], {}, { timeout: 1 }), 'ERROR after the timeout');
  // spec: wamp.error.timeout; Crossbar: wamp.error.canceled ["timeout reached"]
  assert.equal(err.error, IS_CROSSBAR ? CANCELED : TIMEOUT_URI);
  await invoked.next('INVOCATION');
});

test('rpc-adv: shared registration roundrobin and policy conflict', { timeout: TIMEOUT }, async (t) => {
  const peers = peersFor(t);
  const proc = uri('adv.shared');
  for (const name of ['A', 'B']) {
    const s = await peers.connect('json');
    await within(s.register(proc, () => name, { invoke: 'roundrobin' }), `REGISTERED ${name}`);
  }
  const caller = await peers.connect('json');
  const got = [];
  for (let i = 0; i < 4; i++) got.push(await within(caller.call(proc), 'RESULT'));
  assert.deepStrictEqual([...new Set(got)].sort(), ['A', 'B'], got.join());
  for (let i = 1; i < got.length; i++) assert.notEqual(got[i], got[i - 1], `not round-robin: ${got}`);

  const other = await peers.connect('json', { transport: 'rawsocket' });
  const err = await expectError(other.register(proc, () => 'C', { invoke: 'random' }), 'REGISTER invoke=random');
  assert.equal(err.error, POLICY_CONFLICT);
});
