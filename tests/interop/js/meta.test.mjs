// WAMP meta API with Autobahn|JS over WebSocket/json (WAMP-FEATURES.md
// 4.24-4.26): session count/list/get/kill (the killed Autobahn|JS session sees
// the reason and message), on_join/on_leave (GOODBYE and dropped transport),
// registration and subscription meta procedures and events with their
// ordering, remove_callee / remove_subscriber from the callee's/subscriber's
// side, and the no_such_* errors.
//
// No kill_by_authrole / kill_all here: node --test runs the test files in
// parallel, and those would kill other files' sessions (Python covers them).
// Result shapes: see python/test_meta.py and the README.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { IS_CROSSBAR, autobahn, expectError, peersFor, sleep, uri, within } from './lib/wamp.mjs';

const TIMEOUT = 10000;
const UNKNOWN_ID = 4242;

/** Raw RESULT arguments: autobahn.Result for 0 or >1 args, else the single value. */
async function call(session, proc, args = [], kwargs = {}) {
  const res = await within(session.call(proc, args, kwargs), proc);
  return res instanceof autobahn.Result ? res.args ?? [] : [res];
}

async function call1(session, proc, args = [], kwargs = {}) {
  const out = await call(session, proc, args, kwargs);
  assert.equal(out.length, 1, `${proc}: one positional result expected, got ${JSON.stringify(out)}`);
  return out[0];
}

/** Meta events (name, args) in arrival order. */
class MetaEvents {
  constructor() {
    this.items = [];
    this.listeners = [];
  }

  async subscribe(session, topics) {
    for (const t of topics) {
      const name = t.split('.').pop();
      await within(
        session.subscribe(t, (args) => {
          this.items.push({ name, args: args ?? [] });
          for (const l of this.listeners) l();
        }),
        `SUBSCRIBED ${t}`,
      );
    }
  }

  ref(args) {
    const x = args[1];
    return x && typeof x === 'object' ? x.id : x;
  }

  about(id) {
    return this.items.filter((e) => e.args.length >= 2 && this.ref(e.args) === id).map((e) => e.name.slice(3));
  }

  find(name, id) {
    return this.items.filter((e) => e.name === name && e.args.length >= 2 && this.ref(e.args) === id).map((e) => e.args);
  }

  waitFor(pred, what) {
    if (pred()) return Promise.resolve();
    let listener;
    const p = new Promise((resolve) => {
      listener = () => pred() && resolve();
      this.listeners.push(listener);
    });
    return within(p, what).catch((e) => {
      e.message += `; events so far ${JSON.stringify(this.items).slice(0, 2000)}`;
      throw e;
    }).finally(() => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    });
  }
}

const REG_EVENTS = ['create', 'register', 'unregister', 'delete'].map((n) => `wamp.registration.on_${n}`);
const SUB_EVENTS = ['create', 'subscribe', 'unsubscribe', 'delete'].map((n) => `wamp.subscription.on_${n}`);
// Autobahn|JS resolves a RESULT without arguments to null, like one whose only
// argument is null, so both read as "no result" here (the Python suite tells them
// apart).
const noResult = (out) => [[], [null]].some((x) => JSON.stringify(x) === JSON.stringify(out));

test('session meta: count, list, get', { timeout: TIMEOUT }, async (t) => {
  const peers = peersFor(t);
  const m = await peers.connect('json');
  const x = await peers.connect('json');
  const w = x.welcome;
  const ids = await call1(m, 'wamp.session.list');
  assert.ok(ids.includes(x.id) && ids.includes(m.id), JSON.stringify(ids));
  assert.ok((await call1(m, 'wamp.session.list', [[w.authrole]])).includes(x.id));
  assert.deepEqual(await call1(m, 'wamp.session.list', [['junction.interop.no-such-role']]), []);
  const n = await call1(m, 'wamp.session.count');
  assert.ok(Number.isInteger(n) && n >= 2, String(n));
  assert.equal(await call1(m, 'wamp.session.count', [['junction.interop.no-such-role']]), 0);
  const d = await call1(m, 'wamp.session.get', [x.id]);
  assert.deepEqual(
    { session: d.session, authid: d.authid, authrole: d.authrole, authmethod: d.authmethod, authprovider: d.authprovider },
    { session: x.id, authid: w.authid, authrole: w.authrole, authmethod: w.authmethod, authprovider: w.authprovider },
  );
  const e = await expectError(m.call('wamp.session.kill', [UNKNOWN_ID]), 'kill unknown');
  assert.equal(e.error, 'wamp.error.no_such_session');
});

test('session meta: kill with reason and message; on_join / on_leave', { timeout: TIMEOUT }, async (t) => {
  const peers = peersFor(t);
  const m = await peers.connect('json');
  const ev = new MetaEvents();
  await ev.subscribe(m, ['wamp.session.on_join', 'wamp.session.on_leave']);
  const joinOf = (id) => ev.items.filter((e) => e.name === 'on_join' && e.args[0]?.session === id);
  const leaveOf = (id) => ev.items.filter((e) => e.name === 'on_leave' && e.args[0] === id);

  const v = await peers.connect('json');
  const vc = peers.clientOf(v);
  const vid = v.id; // Autobahn|JS resets session.id once the session is closed
  await ev.waitFor(() => joinOf(vid).length, 'on_join');
  assert.equal(joinOf(vid)[0].args[0].authid, v.welcome.authid);
  assert.equal(joinOf(vid)[0].args[0].authrole, v.welcome.authrole);

  const out = await call(m, 'wamp.session.kill', [vid], { reason: 'junction.interop.js.kicked', message: 'bye js' });
  assert.ok(noResult(out), `kill: no result expected, got ${JSON.stringify(out)}`);
  const closed = await within(vc.closed, 'killed session closes');
  assert.equal(closed.details.reason, 'junction.interop.js.kicked');
  assert.equal(closed.details.message, 'bye js');
  await ev.waitFor(() => leaveOf(vid).length, 'on_leave after kill');
  const leaveArgs = leaveOf(vid)[0].args;
  assert.deepEqual(leaveArgs, IS_CROSSBAR ? [vid] : [vid, v.welcome.authid, v.welcome.authrole]);

  // abrupt transport close
  const d = await peers.connect('json');
  const did = d.id;
  await ev.waitFor(() => joinOf(did).length, 'on_join (2)');
  peers.clientOf(d).drop();
  await ev.waitFor(() => leaveOf(did).length, 'on_leave after dropped transport');
  assert.ok(m.isOpen, 'the caller survives');
});

test('registration meta: procedures and events (exact/prefix/wildcard)', { timeout: TIMEOUT }, async (t) => {
  const peers = peersFor(t);
  const m = await peers.connect('json');
  const ev = new MetaEvents();
  await ev.subscribe(m, REG_EVENTS);
  const c1 = await peers.connect('json');
  const c2 = await peers.connect('json');
  const base = uri('meta.reg');
  const [exact, prefix, wildcard] = [`${base}.a.x`, `${base}.a`, `${base}..x`];
  const r1 = await within(c1.register(exact, () => 1, { invoke: 'roundrobin' }), 'REGISTERED 1');
  const r2 = await within(c2.register(exact, () => 2, { invoke: 'roundrobin' }), 'REGISTERED 2');
  const rp = await within(c2.register(prefix, () => 3, { match: 'prefix' }), 'REGISTERED prefix');
  const rw = await within(c2.register(wildcard, () => 4, { match: 'wildcard' }), 'REGISTERED wildcard');
  assert.equal(r1.id, r2.id);
  await ev.waitFor(() => ev.about(r1.id).length >= 3 && ev.about(rp.id).length >= 2 && ev.about(rw.id).length >= 2, 'create/register');
  assert.deepEqual(ev.about(r1.id), ['create', 'register', 'register']);
  const [create] = ev.find('on_create', r1.id);
  assert.equal(create[0], c1.id);
  assert.equal(create[1].uri, exact);
  assert.equal(create[1].match, 'exact');
  assert.equal(create[1].invoke, 'roundrobin');
  assert.equal(typeof create[1].created, 'string');
  assert.equal(ev.find('on_create', rw.id)[0][1].match, 'wildcard');

  const lst = await call1(m, 'wamp.registration.list');
  assert.ok(lst.exact.includes(r1.id) && lst.prefix.includes(rp.id) && lst.wildcard.includes(rw.id), JSON.stringify(lst));
  assert.equal(await call1(m, 'wamp.registration.lookup', [exact]), r1.id);
  assert.equal(await call1(m, 'wamp.registration.lookup', [prefix, { match: 'prefix' }]), rp.id);
  assert.equal(await call1(m, 'wamp.registration.lookup', [wildcard, { match: 'wildcard' }]), rw.id);
  assert.equal(await call1(m, 'wamp.registration.lookup', [prefix]), null);
  assert.equal(await call1(m, 'wamp.registration.match', [`${base}.a.y`]), rp.id);
  assert.equal(await call1(m, 'wamp.registration.match', [`${base}.b.x`]), rw.id);
  assert.equal(await call1(m, 'wamp.registration.match', [`${base}.b.y`]), null);
  assert.deepEqual(await call1(m, 'wamp.registration.get', [rp.id]), ev.find('on_create', rp.id)[0][1]);
  assert.deepEqual((await call1(m, 'wamp.registration.list_callees', [r1.id])).sort(), [c1.id, c2.id].sort());
  assert.equal(await call1(m, 'wamp.registration.count_callees', [r1.id]), 2);

  await within(r2.unregister(), 'UNREGISTERED 2');
  await within(r1.unregister(), 'UNREGISTERED 1');
  await ev.waitFor(() => ev.about(r1.id).length >= 6, 'unregister/delete');
  assert.deepEqual(ev.about(r1.id), ['create', 'register', 'register', 'unregister', 'unregister', 'delete']);
  assert.deepEqual(ev.find('on_delete', r1.id), [[c1.id, r1.id]]);
  for (const p of ['wamp.registration.get', 'wamp.registration.list_callees', 'wamp.registration.count_callees']) {
    const e = await expectError(m.call(p, [r1.id]), p);
    assert.equal(e.error, 'wamp.error.no_such_registration', p);
  }
});

test('registration meta: remove_callee revokes the Autobahn|JS registration', { timeout: TIMEOUT }, async (t) => {
  const peers = peersFor(t);
  const m = await peers.connect('json');
  const ev = new MetaEvents();
  await ev.subscribe(m, REG_EVENTS);
  const c = await peers.connect('json');
  const proc = uri('meta.rmcallee');
  const reg = await within(c.register(proc, () => 1), 'REGISTERED');
  if (IS_CROSSBAR) {
    // Crossbar 26.10.1: runtime_error ('NoneType' ... 'forward_for'), no
    // revocation sent, no meta events; the registration is gone nevertheless
    const e = await expectError(m.call('wamp.registration.remove_callee', [reg.id, c.id]), 'remove_callee');
    assert.equal(e.error, 'wamp.error.runtime_error');
    assert.equal(await call1(m, 'wamp.registration.lookup', [proc]), null);
    t.skip('Crossbar fails remove_callee half-way (README)');
    return;
  }
  const revoked = within(reg.on_unregister, 'registration.on_unregister (revocation)');
  const out = await call(m, 'wamp.registration.remove_callee', [reg.id, c.id], { reason: 'junction.interop.js.removed' });
  assert.ok(noResult(out), JSON.stringify(out));
  assert.equal(await revoked, 'junction.interop.js.removed');
  await ev.waitFor(() => ev.about(reg.id).length >= 4, 'unregister/delete');
  assert.deepEqual(ev.about(reg.id), ['create', 'register', 'unregister', 'delete']);
  const e = await expectError(m.call(proc), 'call after revocation');
  assert.equal(e.error, 'wamp.error.no_such_procedure');
  assert.ok(c.isOpen, 'the callee session goes on');
});

test('subscription meta: procedures and events (exact/prefix/wildcard)', { timeout: TIMEOUT }, async (t) => {
  const peers = peersFor(t);
  const m = await peers.connect('json');
  const ev = new MetaEvents();
  await ev.subscribe(m, SUB_EVENTS);
  const s1 = await peers.connect('json');
  const s2 = await peers.connect('json');
  const base = uri('meta.sub');
  const [exact, prefix, wildcard] = [`${base}.a.x`, `${base}.a`, `${base}..x`];
  const noop = () => {};
  const a = await within(s1.subscribe(exact, noop), 'SUBSCRIBED 1');
  const b = await within(s2.subscribe(exact, noop), 'SUBSCRIBED 2');
  const p = await within(s2.subscribe(prefix, noop, { match: 'prefix' }), 'SUBSCRIBED prefix');
  const w = await within(s2.subscribe(wildcard, noop, { match: 'wildcard' }), 'SUBSCRIBED wildcard');
  assert.equal(a.id, b.id);
  await ev.waitFor(() => ev.about(a.id).length >= 3 && ev.about(p.id).length >= 2 && ev.about(w.id).length >= 2, 'create/subscribe');
  assert.deepEqual(ev.about(a.id), ['create', 'subscribe', 'subscribe']);
  assert.deepEqual(ev.find('on_subscribe', a.id), [[s1.id, a.id], [s2.id, a.id]]);
  const [create] = ev.find('on_create', w.id);
  assert.deepEqual([create[0], create[1].uri, create[1].match, typeof create[1].created], [s2.id, wildcard, 'wildcard', 'string']);

  const lst = await call1(m, 'wamp.subscription.list');
  assert.ok(lst.exact.includes(a.id) && lst.prefix.includes(p.id), JSON.stringify(lst));
  if (!IS_CROSSBAR) assert.ok(lst.wildcard.includes(w.id), JSON.stringify(lst)); // Crossbar: always empty
  assert.equal(await call1(m, 'wamp.subscription.lookup', [exact]), a.id);
  assert.equal(await call1(m, 'wamp.subscription.lookup', [prefix, { match: 'prefix' }]), p.id);
  assert.equal(await call1(m, 'wamp.subscription.lookup', [wildcard, { match: 'wildcard' }]), w.id);
  assert.equal(await call1(m, 'wamp.subscription.lookup', [prefix]), null);
  assert.deepEqual((await call1(m, 'wamp.subscription.match', [exact])).sort(), [a.id, p.id, w.id].sort());
  assert.deepEqual(await call1(m, 'wamp.subscription.match', [`${base}.b.x`]), [w.id]);
  assert.equal(await call1(m, 'wamp.subscription.match', [`${base}.b.y`]), null);
  assert.deepEqual(await call1(m, 'wamp.subscription.get', [p.id]), ev.find('on_create', p.id)[0][1]);
  assert.deepEqual((await call1(m, 'wamp.subscription.list_subscribers', [a.id])).sort(), [s1.id, s2.id].sort());
  assert.equal(await call1(m, 'wamp.subscription.count_subscribers', [a.id]), 2);

  await within(b.unsubscribe(), 'UNSUBSCRIBED 2');
  await within(a.unsubscribe(), 'UNSUBSCRIBED 1');
  await ev.waitFor(() => ev.about(a.id).length >= 6, 'unsubscribe/delete');
  assert.deepEqual(ev.about(a.id), ['create', 'subscribe', 'subscribe', 'unsubscribe', 'unsubscribe', 'delete']);
  assert.deepEqual(ev.find('on_delete', a.id), [[s1.id, a.id]]);
  for (const proc of ['wamp.subscription.get', 'wamp.subscription.list_subscribers', 'wamp.subscription.count_subscribers']) {
    const e = await expectError(m.call(proc, [a.id]), proc);
    assert.equal(e.error, 'wamp.error.no_such_subscription', proc);
  }
});

test('subscription meta: remove_subscriber revokes the Autobahn|JS subscription', { timeout: TIMEOUT }, async (t) => {
  const peers = peersFor(t);
  const m = await peers.connect('json');
  const ev = new MetaEvents();
  await ev.subscribe(m, SUB_EVENTS);
  const s = await peers.connect('json');
  const topic = uri('meta.rmsub');
  const sub = await within(s.subscribe(topic, () => {}), 'SUBSCRIBED');
  const revoked = within(sub.on_unsubscribe, 'subscription.on_unsubscribe (revocation)');
  const out = await call(m, 'wamp.subscription.remove_subscriber', [sub.id, s.id], { reason: 'junction.interop.js.removed' });
  assert.ok(noResult(out), JSON.stringify(out));
  assert.equal(await revoked, 'junction.interop.js.removed');
  await ev.waitFor(() => ev.about(sub.id).length >= 4, 'unsubscribe/delete');
  assert.deepEqual(ev.about(sub.id), ['create', 'subscribe', 'unsubscribe', 'delete']);
  assert.equal(await call1(m, 'wamp.subscription.lookup', [topic]), null);
  await sleep(0);
  assert.ok(s.isOpen, 'the subscriber session goes on');
});
