// Authentication with Autobahn|JS: ticket, WAMP-CRA (plain and salted) and
// WAMP-Cryptosign on the realm `junction.auth` of tests/interop/junction.toml
// (test-only credentials, see there). Right credentials join and WELCOME names
// the authid, authrole and authmethod; wrong ones get ABORT
// wamp.error.not_authorized; the role's permissions apply. Crossbar.io is not
// configured with this realm: skipped there.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';

import { IS_CROSSBAR, TEST_TIMEOUT, autobahn, expectError, peersFor, uri, within } from './lib/wamp.mjs';

const require = createRequire(import.meta.url);
const nacl = require('tweetnacl');

const REALM = 'junction.auth';
const NOT_AUTHORIZED = 'wamp.error.not_authorized';
const SKIP = IS_CROSSBAR ? 'the auth realm is configured for Junction only' : false;
// bytes 1..32: the cryptosign seed whose public key junction.toml lists
const SEED = Uint8Array.from({ length: 32 }, (_, i) => i + 1);

const ticket = (authid, secret) => ({
  authmethods: ['ticket'],
  authid,
  onchallenge: (_session, method) => {
    assert.equal(method, 'ticket');
    return secret;
  },
});

const wampcra = (authid, secret) => ({
  authmethods: ['wampcra'],
  authid,
  onchallenge: (_session, method, extra) => {
    assert.equal(method, 'wampcra');
    const key =
      extra.salt === undefined
        ? secret
        : autobahn.auth_cra.derive_key(secret, extra.salt, extra.iterations, extra.keylen);
    return autobahn.auth_cra.sign(key, extra.challenge);
  },
});

const cryptosign = (authid, seed) => {
  const pkey = nacl.sign.keyPair.fromSeed(seed);
  const auth = {
    authmethods: ['cryptosign'],
    authextra: { pubkey: autobahn.auth_cryptosign.public_key(pkey) },
    onchallenge: (_session, method, extra) => {
      assert.equal(method, 'cryptosign');
      return autobahn.auth_cryptosign.sign_challenge(pkey, extra);
    },
  };
  if (authid !== null) auth.authid = authid;
  return auth;
};

const GOOD = [
  ['ticket', ticket('ticket-user', 'ticket-secret'), 'ticket-user', 'writer'],
  ['wampcra', wampcra('cra-user', 'cra-secret'), 'cra-user', 'reader'],
  ['wampcra salted', wampcra('cra-salted', 'salted-secret'), 'cra-salted', 'reader'],
  ['cryptosign', cryptosign('cs-user', SEED), 'cs-user', 'writer'],
  ['cryptosign by key', cryptosign(null, SEED), 'cs-user', 'writer'],
];

const BAD = [
  ['ticket', ticket('ticket-user', 'wrong')],
  ['ticket, unknown authid', ticket('nobody', 'ticket-secret')],
  ['wampcra', wampcra('cra-user', 'wrong')],
  ['wampcra salted', wampcra('cra-salted', 'cra-secret')],
  ['cryptosign, wrong key', cryptosign('cs-user', new Uint8Array(32))],
  ['cryptosign, unknown key', cryptosign(null, new Uint8Array(32).fill(7))],
];

for (const ser of ['json', 'msgpack']) {
  for (const [name, auth, authid, authrole] of GOOD) {
    test(`auth: ${name} logs in [${ser}]`, { timeout: TEST_TIMEOUT, skip: SKIP }, async (t) => {
      const peers = peersFor(t);
      const session = await peers.connect(ser, { realm: REALM, auth });
      assert.equal(session.welcome.authid, authid);
      assert.equal(session.welcome.authrole, authrole);
      assert.equal(session.welcome.authmethod, auth.authmethods[0]);
    });
  }
  for (const [name, auth] of BAD) {
    test(`auth: ${name} is refused [${ser}]`, { timeout: TEST_TIMEOUT, skip: SKIP }, async (t) => {
      const peers = peersFor(t);
      await assert.rejects(peers.connect(ser, { realm: REALM, auth }), (err) => {
        assert.equal(err.reason, NOT_AUTHORIZED, err.message);
        return true;
      });
    });
  }
}

test('auth: role permissions apply', { timeout: TEST_TIMEOUT, skip: SKIP }, async (t) => {
  const peers = peersFor(t);
  const writer = await peers.connect('json', { realm: REALM, auth: cryptosign(null, SEED) });
  const reader = await peers.connect('json', { realm: REALM, auth: wampcra('cra-user', 'cra-secret') });
  const proc = uri('auth.echo');
  await within(writer.register(proc, (args) => args[0]), 'REGISTERED');
  assert.equal(await within(reader.call(proc, [42]), 'RESULT'), 42);
  const denied = await expectError(reader.register(uri('auth.mine'), () => 0), 'REGISTER by a reader');
  assert.equal(denied.error, NOT_AUTHORIZED);
  // anonymous is not offered on this realm
  await assert.rejects(peers.connect('json', { realm: REALM }), (err) => {
    assert.equal(err.reason, 'wamp.error.no_matching_auth_method', err.message);
    return true;
  });
});
