// Remote procedure calls between Autobahn|JS sessions, for every serializer
// Autobahn|JS supports on Node (WebSocket).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  Inbox,
  JS_SERIALIZERS,
  MAX_SAFE,
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

const NO_SUCH_PROCEDURE = 'wamp.error.no_such_procedure';
const PROCEDURE_ALREADY_EXISTS = 'wamp.error.procedure_already_exists';
const CANCELED = 'wamp.error.canceled';

for (const ser of JS_SERIALIZERS) {
  test(`rpc: args/kwargs round trip [${ser}]`, { timeout: TEST_TIMEOUT }, async (t) => {
    const peers = peersFor(t);
    const callee = await peers.connect(ser);
    const caller = await peers.connect(ser);
    const proc = uri('rpc.echo');
    const seen = new Inbox();
    await within(
      callee.register(proc, (args, kwargs) => {
        seen.push({ args, kwargs });
        return new autobahn.Result(args, kwargs);
      }),
      'REGISTERED',
    );

    const cases = [
      [payloadArgs(), payloadKwargs()],
      [['only', 'args', -MAX_SAFE, 0.5], {}],
      [[], { only: 'kwargs', n: MAX_SAFE }],
    ];
    for (const [args, kwargs] of cases) {
      const res = await within(caller.call(proc, args, kwargs), 'RESULT');
      const inv = await seen.next('INVOCATION');
      assert.deepStrictEqual(inv.args, args, 'invocation args');
      assert.deepStrictEqual(inv.kwargs, kwargs, 'invocation kwargs');
      const out = resultParts(res);
      assert.deepStrictEqual(out.args, args, 'result args');
      assert.deepStrictEqual(out.kwargs, kwargs, 'result kwargs');
    }

    // plain single return value
    const add = uri('rpc.add');
    await within(callee.register(add, ([a, b]) => a + b), 'REGISTERED');
    assert.equal(await within(caller.call(add, [2, 3]), 'RESULT'), 5);
    assert.equal(await within(caller.call(add, [0.25, 0.5]), 'RESULT'), 0.75);
  });

  test(`rpc: application error reaches the caller unchanged [${ser}]`, { timeout: TEST_TIMEOUT }, async (t) => {
    const peers = peersFor(t);
    const callee = await peers.connect(ser);
    const caller = await peers.connect(ser);
    const proc = uri('rpc.fails');
    const errorUri = 'junction.interop.error.custom_failure';
    const errArgs = ['something went wrong ☹', 42, MAX_SAFE, 0.5, null, [1, { k: [true] }]];
    const errKwargs = { reason: 'ünïcødé', code: -7, detail: { nested: [null, false] } };
    await within(
      callee.register(proc, () => {
        throw new autobahn.Error(errorUri, structuredClone(errArgs), structuredClone(errKwargs));
      }),
      'REGISTERED',
    );
    const err = await expectError(caller.call(proc, ['x'], { k: 'v' }), 'CALL to failing procedure');
    assert.equal(err.error, errorUri);
    assert.deepStrictEqual(err.args, errArgs);
    assert.deepStrictEqual(err.kwargs, errKwargs);

    // async handler rejecting works the same
    const asyncProc = uri('rpc.fails_async');
    await within(
      callee.register(asyncProc, async () => {
        throw new autobahn.Error('junction.interop.error.bare');
      }),
      'REGISTERED',
    );
    const bare = await expectError(caller.call(asyncProc), 'CALL');
    assert.equal(bare.error, 'junction.interop.error.bare');
    assert.deepStrictEqual(bare.args, []);
    assert.deepStrictEqual(bare.kwargs, {});
  });

  test(`rpc: unknown procedure -> no_such_procedure [${ser}]`, { timeout: TEST_TIMEOUT }, async (t) => {
    const peers = peersFor(t);
    const caller = await peers.connect(ser);
    const err = await expectError(caller.call(uri('rpc.nobody_home'), [1]), 'CALL');
    assert.equal(err.error, NO_SUCH_PROCEDURE);
  });

  test(`rpc: second registration -> procedure_already_exists [${ser}]`, { timeout: TEST_TIMEOUT }, async (t) => {
    const peers = peersFor(t);
    const first = await peers.connect(ser);
    const second = await peers.connect(ser);
    const caller = await peers.connect(ser);
    const proc = uri('rpc.taken');
    await within(first.register(proc, () => 'first'), 'REGISTERED');
    const err = await expectError(second.register(proc, () => 'second'), 'second REGISTER');
    assert.equal(err.error, PROCEDURE_ALREADY_EXISTS);
    assert.equal(await within(caller.call(proc), 'RESULT'), 'first');
  });

  test(`rpc: unregister, then call -> no_such_procedure [${ser}]`, { timeout: TEST_TIMEOUT }, async (t) => {
    const peers = peersFor(t);
    const callee = await peers.connect(ser);
    const caller = await peers.connect(ser);
    const proc = uri('rpc.unregister');
    const reg = await within(callee.register(proc, () => 'here'), 'REGISTERED');
    assert.equal(await within(caller.call(proc), 'RESULT'), 'here');
    await within(callee.unregister(reg), 'UNREGISTERED');
    const err = await expectError(caller.call(proc), 'CALL after UNREGISTER');
    assert.equal(err.error, NO_SUCH_PROCEDURE);
  });

  for (const how of ['goodbye', 'drop']) {
    test(`rpc: callee leaves (${how}) during a call -> canceled [${ser}]`, { timeout: TEST_TIMEOUT }, async (t) => {
      const peers = peersFor(t);
      const callee = await peers.connect(ser);
      const caller = await peers.connect(ser);
      const proc = uri('rpc.hangs');
      const invoked = new Inbox();
      await within(
        callee.register(proc, () => {
          invoked.push(true);
          return new Promise(() => {}); // never answers
        }),
        'REGISTERED',
      );
      const call = caller.call(proc, ['ping']);
      call.catch(() => {}); // checked below
      await invoked.next('INVOCATION at the callee');

      const client = peers.clientOf(callee);
      if (how === 'goodbye') client.connection.close();
      else client.drop();

      const err = await expectError(call, 'ERROR for the pending CALL');
      assert.equal(err.error, CANCELED);
      const again = await expectError(caller.call(proc), 'CALL after the callee left');
      assert.equal(again.error, NO_SUCH_PROCEDURE);
    });
  }
}
