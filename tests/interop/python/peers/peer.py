"""Autobahn|Python side of the cross-client tests; the Node suite runs it.

    python peer.py '<spec as JSON>'

Spec keys (payload values: bytes are written as {"__bytes__": "<base64>"}):
    role        "callee" | "caller" | "publisher" | "subscriber" | "advanced_callee"
    transport   "websocket" | "rawsocket"       (router from WAMP_* env vars)
    serializer  "json" | "msgpack" | "cbor"
    uri         procedure / topic
    count       callee: exit after this many invocations; subscriber: events
    calls       caller: [{"procedure": uri, "args": [...], "kwargs": {...}}]
    args/kwargs publisher: payload of the one (acknowledged) publication
    deadline    seconds until the peer gives up (default 10)

The callee registers `uri` (returns its args/kwargs unchanged) and
`uri + ".fail"` (raises ApplicationError "junction.interop.error.from_python"
with its args/kwargs).

The advanced_callee registers
    `uri + ".stream"`: called with (n), sends n progressive results
        [i, "step i"] {"i": i} if the caller asked for them, then returns
        ["done", n]; reports {"event": "invocation", "receive_progress": bool}
    `uri + ".hang"`: reports "invocation", never answers; when interrupted
        (INTERRUPT) it reports {"event": "interrupted"}, waits 0.2 s, then
        answers ERROR wamp.error.canceled
and leaves after `count` invocations have ended (answered or interrupted).

Output: one JSON object per line on stdout, in this order
    {"event": "ready"}                                   callee / subscriber
    {"event": "invocation"|"event"|"result", "args", "kwargs", "types", ...}
    {"event": "error", "error", "args", "kwargs", "types"}  caller got ERROR
    {"event": "published", "publication": id}
    {"event": "done"}
"types" mirrors args/kwargs with the Python type of every value
(str/int/float/bool/null/bytes/list/dict) so the Node side can check them.
Exit status 0 on success; otherwise the reason is on stderr.
"""

import asyncio
import base64
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from autobahn.wamp.exception import ApplicationError  # noqa: E402
from autobahn.wamp.types import PublishOptions, RegisterOptions  # noqa: E402

from autobahn.wamp.types import CallResult  # noqa: E402

from wampinterop import connect, disconnect, echo, result_parts  # noqa: E402

FAIL_URI = "junction.interop.error.from_python"


def decode(v):
    if isinstance(v, dict):
        if set(v) == {"__bytes__"}:
            return base64.b64decode(v["__bytes__"])
        return {k: decode(x) for k, x in v.items()}
    if isinstance(v, list):
        return [decode(x) for x in v]
    return v


def encode(v):
    if isinstance(v, (bytes, bytearray)):
        return {"__bytes__": base64.b64encode(bytes(v)).decode("ascii")}
    if isinstance(v, dict):
        return {k: encode(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [encode(x) for x in v]
    return v


def types(v):
    if isinstance(v, dict):
        return {k: types(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [types(x) for x in v]
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "str"
    if isinstance(v, (bytes, bytearray)):
        return "bytes"
    return type(v).__name__


def emit(event, **fields):
    fields = {"event": event, **fields}
    for key in ("args", "kwargs"):
        if key in fields:
            fields.setdefault("types", {})[key] = types(fields[key])
            fields[key] = encode(fields[key])
    # anything JSON can't show (e.g. a CBORTag) is reported by its repr
    sys.stdout.write(json.dumps(fields, default=lambda o: {"__repr__": repr(o)}) + "\n")
    sys.stdout.flush()


async def run(spec):
    role = spec["role"]
    session = await connect(spec["transport"], spec["serializer"])
    try:
        if role == "callee":
            remaining = spec.get("count", 1)
            finished = asyncio.get_running_loop().create_future()

            def seen(procedure, args, kwargs):
                nonlocal remaining
                emit("invocation", procedure=procedure, args=list(args), kwargs=kwargs)
                remaining -= 1
                if remaining <= 0 and not finished.done():
                    # answer first, then leave
                    asyncio.get_running_loop().call_later(0.05, finished.set_result, None)

            def echo_handler(*args, **kwargs):
                seen(spec["uri"], args, kwargs)
                return echo(*args, **kwargs)

            def fail_handler(*args, **kwargs):
                seen(spec["uri"] + ".fail", args, kwargs)
                raise ApplicationError(FAIL_URI, *args, **kwargs)

            await session.register(echo_handler, spec["uri"])
            await session.register(fail_handler, spec["uri"] + ".fail")
            emit("ready")
            await finished

        elif role == "advanced_callee":
            remaining = spec.get("count", 1)
            loop = asyncio.get_running_loop()
            finished = loop.create_future()

            def ended():
                nonlocal remaining
                remaining -= 1
                if remaining <= 0 and not finished.done():
                    loop.call_later(0.05, finished.set_result, None)

            def stream(n, details):
                try:
                    emit("invocation", procedure=details.procedure, receive_progress=details.progress is not None)
                    if details.progress is not None:
                        for i in range(n):
                            details.progress(i, f"step {i}", i=i)
                    return CallResult("done", n)
                finally:
                    ended()

            async def hang(*args, **kwargs):
                emit("invocation", args=list(args), kwargs=kwargs)
                try:
                    await asyncio.sleep(30)
                except asyncio.CancelledError:
                    emit("interrupted")
                    await asyncio.sleep(0.2)
                    raise ApplicationError("wamp.error.canceled", "interrupted") from None
                finally:
                    ended()

            opts = RegisterOptions(details_arg="details")
            await session.register(stream, spec["uri"] + ".stream", options=opts)
            await session.register(hang, spec["uri"] + ".hang")
            emit("ready")
            await finished

        elif role == "subscriber":
            remaining = spec.get("count", 1)
            finished = asyncio.get_running_loop().create_future()

            def on_event(*args, **kwargs):
                nonlocal remaining
                emit("event", args=list(args), kwargs=kwargs)
                remaining -= 1
                if remaining <= 0 and not finished.done():
                    finished.set_result(None)

            await session.subscribe(on_event, spec["uri"])
            emit("ready")
            await finished

        elif role == "caller":
            for call in spec["calls"]:
                try:
                    res = await session.call(
                        call["procedure"],
                        *decode(call.get("args", [])),
                        **decode(call.get("kwargs", {})),
                    )
                except ApplicationError as e:
                    emit("error", error=e.error, args=list(e.args), kwargs=e.kwargs)
                else:
                    args, kwargs = result_parts(res)
                    emit("result", args=args, kwargs=kwargs)

        elif role == "publisher":
            pub = await session.publish(
                spec["uri"],
                *decode(spec.get("args", [])),
                options=PublishOptions(acknowledge=True),
                **decode(spec.get("kwargs", {})),
            )
            emit("published", publication=pub.id)

        else:
            raise ValueError(f"unknown role {role!r}")
    finally:
        await disconnect(session)
    emit("done")


def main():
    spec = json.loads(sys.argv[1])
    deadline = float(spec.get("deadline", 10))
    try:
        asyncio.run(asyncio.wait_for(run(spec), deadline))
    except asyncio.TimeoutError:
        sys.stderr.write(f"peer ({spec.get('role')}): gave up after {deadline}s\n")
        sys.exit(1)
    except Exception as e:  # report, don't dump a traceback into the test output
        sys.stderr.write(f"peer ({spec.get('role')}): {type(e).__name__}: {e}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
