// Helpers for the WAMP interop suite with Autobahn|JS on Node.
//
// Router selection (same variables as the Python suite):
//   WAMP_WS_URL (default ws://127.0.0.1:8080/ws), WAMP_RS_HOST (127.0.0.1),
//   WAMP_RS_PORT (8081), WAMP_REALM (realm1)
//
// Autobahn|JS 26 uses the global WebSocket class (built into Node >= 22 only).
// We always install the `ws` package as that global, so the suite behaves the
// same on every Node version.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

// Every socket Autobahn|JS opens is tracked, so that a test that failed
// half-way (e.g. a router that never answers) can't keep the test file's
// process alive: they are all destroyed once the file's tests are done.
const liveSockets = new Set();
function track(sock, destroy) {
  const entry = { destroy };
  liveSockets.add(entry);
  sock.once('close', () => liveSockets.delete(entry));
  return sock;
}

const WS = require('ws');
class TrackedWebSocket extends WS {
  constructor(...args) {
    super(...args);
    track(this, () => this.terminate());
  }
}
globalThis.WebSocket = TrackedWebSocket;

// Autobahn|JS's RawSocket transport calls require('net').connect() when it connects
const net = require('net');
const netConnect = net.connect;
net.connect = function (...args) {
  const sock = netConnect.apply(this, args);
  return track(sock, () => sock.destroy());
};

export const autobahn = require('autobahn');

after(() => {
  for (const entry of liveSockets) entry.destroy();
  liveSockets.clear();
  // last resort if something else still holds the event loop open
  setTimeout(() => process.exit(), 2000).unref();
});

// Autobahn|JS warns on every normal close; keep everything else visible.
const QUIET = new Set(['connection closed', 'auto-reconnect disabled!']);
autobahn.log.warn = (msg, ...rest) => {
  if (!QUIET.has(msg)) console.warn(msg, ...rest);
};

export const WS_URL = process.env.WAMP_WS_URL || 'ws://127.0.0.1:8080/ws';
export const RS_HOST = process.env.WAMP_RS_HOST || '127.0.0.1';
export const RS_PORT = Number(process.env.WAMP_RS_PORT || '8081');
export const REALM = process.env.WAMP_REALM || 'realm1';
// junction | crossbar: the few tests that meet a known Crossbar deviation
// from the spec read it (README, "Router-specific expectations")
export const ROUTER = (process.env.WAMP_ROUTER || 'junction').toLowerCase();
export const IS_CROSSBAR = ROUTER === 'crossbar';

export const STEP_TIMEOUT = Number(process.env.WAMP_STEP_TIMEOUT || '3') * 1000;
export const TEST_TIMEOUT = 8000;
export const NO_EVENT_GRACE = 100;

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const INTEROP_DIR = path.resolve(HERE, '..', '..');
export const PYTHON = process.env.INTEROP_PYTHON || path.join(INTEROP_DIR, '.venv', 'bin', 'python');
export const PEER = path.join(INTEROP_DIR, 'python', 'peers', 'peer.py');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function uri(name) {
  return `junction.interop.js.${name}.${randomUUID().replace(/-/g, '').slice(0, 12)}`;
}

/** Await `promise`, rejecting (not hanging) after `ms`. */
export function within(promise, what, ms = STEP_TIMEOUT) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([Promise.resolve(promise), timeout]).finally(() => clearTimeout(timer));
}

// --- serializers ------------------------------------------------------------

// WAMP's JSON binary convention: bytes travel as "\u0000" + base64. Stock
// Autobahn|JS does not implement it (a Buffer would become {"type":"Buffer",...}),
// but its JSONSerializer takes a replacer/reviver, which is what we plug in.
function binaryReplacer(key, value) {
  const orig = this[key];
  if (orig instanceof Uint8Array) {
    return '\u0000' + Buffer.from(orig.buffer, orig.byteOffset, orig.byteLength).toString('base64');
  }
  return value;
}

function binaryReviver(_key, value) {
  if (typeof value === 'string' && value.charCodeAt(0) === 0) {
    return Buffer.from(value.slice(1), 'base64');
  }
  return value;
}

/** name: json | json+binary | msgpack | cbor */
export function makeSerializer(name) {
  const s = autobahn.serializer;
  switch (name) {
    case 'json':
      return new s.JSONSerializer();
    case 'json+binary':
      return new s.JSONSerializer(binaryReplacer, binaryReviver);
    case 'msgpack':
      return new s.MsgpackSerializer();
    case 'cbor':
      return new s.CBORSerializer();
    default:
      throw new Error(`unknown serializer ${name}`);
  }
}

// serializers Autobahn|JS supports on Node over WebSocket
export const JS_SERIALIZERS = ['json', 'msgpack', 'cbor'];

// --- sessions -----------------------------------------------------------------

export class Client {
  constructor(connection, session, serializer, transport) {
    this.connection = connection;
    this.session = session;
    this.serializer = serializer;
    this.transport = transport;
    this.closed = new Promise((resolve) => {
      this._resolveClosed = resolve;
    });
  }

  /** Polite close (GOODBYE; the reason is not checked). */
  async close(ms = 2000) {
    if (this.connection.isOpen) {
      try {
        this.connection.close();
      } catch {
        // already closing
      }
    }
    try {
      await within(this.closed, 'connection close', ms);
    } catch {
      this.drop();
    }
  }

  /** Drop the transport without a WAMP GOODBYE (like a crashed client). */
  drop() {
    const t = this.connection.transport;
    if (t) t.close(1000, 'dropped by test');
  }
}

/**
 * Connect and join with exactly one serializer.
 * serializer: json | json+binary | msgpack | cbor ; transport: websocket | rawsocket
 * realm: default REALM; auth: { authmethods, authid?, authextra?, onchallenge? }.
 * A join the router refuses rejects with an Error whose `reason` is the ABORT reason.
 */
export async function connect(serializer = 'json', { transport = 'websocket', realm = REALM, auth = {} } = {}) {
  const tr =
    transport === 'websocket'
      ? { type: 'websocket', url: WS_URL, serializers: [makeSerializer(serializer)] }
      : { type: 'rawsocket', host: RS_HOST, port: RS_PORT };
  if (transport === 'rawsocket' && serializer !== 'json') {
    throw new Error('Autobahn|JS RawSocket only speaks json');
  }
  let client;
  const connection = new autobahn.Connection({
    transports: [tr],
    realm,
    ...auth,
    max_retries: 0,
    retry_if_unreachable: false,
    on_user_error: (err, msg) => {
      // application errors we throw on purpose from callees are fine
      if (!(err instanceof autobahn.Error)) console.error(msg, err);
    },
    on_internal_error: (err, msg) => console.error('autobahn internal error:', msg || '', err),
  });
  const joined = new Promise((resolve, reject) => {
    connection.onopen = (session, details) => {
      client = new Client(connection, session, serializer, transport);
      session.welcome = details; // WELCOME.Details (authid, authrole, roles)
      resolve(client);
    };
    connection.onclose = (reason, details) => {
      if (client) client._resolveClosed({ reason, details });
      else {
        const err = new Error(`${transport}/${serializer}: closed before WELCOME: ${reason} ${JSON.stringify(details)}`);
        err.reason = details && details.reason;
        reject(err);
      }
      return true; // never reconnect
    };
  });
  connection.open();
  try {
    await within(joined, `WELCOME (${transport}/${serializer})`);
  } catch (e) {
    try {
      connection.close();
    } catch {
      // not open
    }
    throw e;
  }
  if (transport === 'websocket') {
    const wire = serializer.startsWith('json') ? 'json' : serializer;
    assert.equal(connection.transport.info.protocol, `wamp.2.${wire}`, 'negotiated WebSocket subprotocol');
  }
  return client;
}

/** Opens sessions for one test; `close()` them all in t.after(). */
export class Peers {
  constructor() {
    this.clients = [];
    this.children = [];
  }

  async connect(serializer, opts) {
    const c = await connect(serializer, opts);
    this.clients.push(c);
    return c.session;
  }

  clientOf(session) {
    return this.clients.find((c) => c.session === session);
  }

  /** Start the Python peer (see python/peers/peer.py) with this spec. */
  python(spec) {
    const p = new PythonPeer(spec);
    this.children.push(p);
    return p;
  }

  async close() {
    await Promise.allSettled(this.clients.map((c) => c.close()));
    for (const p of this.children) p.kill();
    this.clients = [];
    this.children = [];
  }
}

/** Returns a fresh Peers and registers its cleanup with the node:test context. */
export function peersFor(t) {
  const p = new Peers();
  t.after(() => p.close());
  return p;
}

// --- collecting events / invocations --------------------------------------------

export class Inbox {
  constructor() {
    this.items = [];
    this.waiters = [];
    // usable directly as an Autobahn|JS event handler
    this.handler = (args, kwargs, details) => this.push({ args: args ?? [], kwargs: kwargs ?? {}, details });
  }

  push(item) {
    const w = this.waiters.shift();
    if (w) w(item);
    else this.items.push(item);
  }

  next(what = 'event', ms = STEP_TIMEOUT) {
    if (this.items.length) return Promise.resolve(this.items.shift());
    let waiter;
    const p = new Promise((resolve) => {
      waiter = resolve;
      this.waiters.push(resolve);
    });
    return within(p, what, ms).catch((e) => {
      this.waiters = this.waiters.filter((w) => w !== waiter);
      throw e;
    });
  }

  /** Only after a positive barrier (a later message on the same path arrived). */
  async assertEmpty(what = 'event') {
    await sleep(NO_EVENT_GRACE);
    assert.equal(this.items.length, 0, `unexpected ${what}: ${JSON.stringify(this.items[0])}`);
  }
}

/** Split what session.call() resolves to into {args, kwargs}. */
export function resultParts(res) {
  if (res instanceof autobahn.Result) return { args: res.args, kwargs: res.kwargs };
  if (res === null || res === undefined) return { args: [], kwargs: {} };
  return { args: [res], kwargs: {} };
}

export async function expectError(promise, what) {
  let res;
  try {
    res = await within(promise, what);
  } catch (e) {
    if (e instanceof autobahn.Error) return e;
    throw e;
  }
  assert.fail(`${what}: expected an ERROR, got result ${JSON.stringify(res)}`);
}

// --- cross-client: the Python peer ---------------------------------------------------

// bytes <-> {"__bytes__": base64} for the JSON spec / report lines
export function toWire(v) {
  if (v instanceof Uint8Array) return { __bytes__: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
  if (Array.isArray(v)) return v.map(toWire);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toWire(x)]));
  return v;
}

export function fromWire(v) {
  if (Array.isArray(v)) return v.map(fromWire);
  if (v && typeof v === 'object') {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === '__bytes__') return Buffer.from(v.__bytes__, 'base64');
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromWire(x)]));
  }
  return v;
}

/**
 * The Python type each JS value must arrive as. JS has no int/float split:
 * safe integers are sent as integers, everything else (1.5, 1e300) as floats.
 */
export function pyTypes(v) {
  if (v === null || v === undefined) return 'null';
  if (v instanceof Uint8Array) return 'bytes';
  if (Array.isArray(v)) return v.map(pyTypes);
  switch (typeof v) {
    case 'boolean':
      return 'bool';
    case 'number':
      return Number.isSafeInteger(v) ? 'int' : 'float';
    case 'string':
      return 'str';
    case 'object':
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, pyTypes(x)]));
    default:
      return typeof v;
  }
}

export class PythonPeer {
  constructor(spec) {
    this.spec = { deadline: 10, ...spec };
    this.lines = new Inbox();
    this.stderr = '';
    this.child = spawn(PYTHON, [PEER, JSON.stringify(toWire(this.spec))], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: process.env,
    });
    let buf = '';
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (chunk) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.trim()) this.lines.push(JSON.parse(line));
      }
    });
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (chunk) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => {
      // 'close' (not 'exit'): fires after stdout/stderr were read to the end
      this.child.on('close', (code, signal) => resolve({ code, signal }));
      this.child.on('error', (err) => resolve({ code: -1, signal: null, err }));
    });
  }

  /** Next report line; it must be of kind `event`. Payload is decoded (bytes -> Buffer). */
  async next(event, ms = STEP_TIMEOUT + 2000) {
    let msg;
    try {
      msg = await Promise.race([
        this.lines.next(`python peer "${event}"`, ms),
        this.exited.then(async (st) => {
          await sleep(10); // a line delivered at the same time wins the race
          if (this.lines.items.length) return this.lines.items.shift();
          throw new Error(`python peer exited (${JSON.stringify(st)}) before "${event}": ${this.stderr}`);
        }),
      ]);
    } catch (e) {
      if (this.stderr) e.message += `\npython peer stderr:\n${this.stderr}`;
      throw e;
    }
    assert.equal(msg.event, event, `python peer reported ${JSON.stringify(msg)}; stderr: ${this.stderr}`);
    if ('args' in msg) msg.args = fromWire(msg.args);
    if ('kwargs' in msg) msg.kwargs = fromWire(msg.kwargs);
    return msg;
  }

  /** Wait for "done" and a clean exit. */
  async finish(ms = STEP_TIMEOUT + 2000) {
    await this.next('done', ms);
    const st = await within(this.exited, 'python peer exit', ms);
    assert.equal(st.code, 0, `python peer exit ${JSON.stringify(st)}: ${this.stderr}`);
  }

  kill() {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

// --- payloads ---------------------------------------------------------------------

// No integral floats (JSON can't keep 2.0 apart from 2 across languages).
// JS numbers only hold integers exactly up to 2^53; Autobahn|JS sends 2^53
// itself as a float on msgpack/cbor, so JS-originated payloads stop at 2^53-1.
export const MAX_SAFE = Number.MAX_SAFE_INTEGER;

export function payloadArgs() {
  return [
    'héllo wörld ☃ 日本語 😀 \u00a0tab\tnewline\nquote"backslash\\',
    '',
    0,
    1,
    -1,
    255,
    65536,
    2 ** 32 + 1,
    MAX_SAFE,
    -MAX_SAFE,
    1.5,
    -0.25,
    0.1,
    Math.PI,
    1e300,
    -2.5e-300,
    true,
    false,
    null,
    [],
    {},
    [1, [2, [3, [4, { deep: ['x', null, true, 0.5] }]]]],
    { nested: { list: [1, 2.5, 'three', false, null], 'ünïcødé kéy ✓': 'välue 😀' } },
  ];
}

export function payloadKwargs() {
  return {
    max_safe_int: MAX_SAFE,
    min_safe_int: -MAX_SAFE,
    float: 0.1,
    flag_true: true,
    flag_false: false,
    nothing: null,
    text: 'ünïcødé 😀 ☃',
    empty_text: '',
    empty_list: [],
    empty_dict: {},
    list: [1, 'two', 3.5, [null, { x: [true] }]],
    dict: { a: { b: { c: [1, 2, { d: 'e' }] } } },
    ключ: 'значение',
  };
}

export function binaryArgs() {
  return [
    Buffer.from([0, 1, 2, 3, 0xfe, 0xff]),
    Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
    Buffer.alloc(0),
    Buffer.from([0]),
    [Buffer.from('in a list'), 'not bytes'],
  ];
}

export function binaryKwargs() {
  return {
    blob: Buffer.from([0xde, 0xad, 0xbe, 0xef]),
    nested: { list: [Buffer.from([0x00, 0x10, 0x20]), { deeper: Buffer.from([0xff, 0xff, 0xff]) }], text: 'still text' },
    text: 'plain string',
  };
}
