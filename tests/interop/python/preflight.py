"""Fail fast if the router under test can't even open a session.

Joins the realm once over WebSocket and once over RawSocket (json) and leaves.
Without this, a router that doesn't answer would make every test of the suite
wait for its own time-out. Exit status 0 = router usable.
"""

import asyncio
import sys

from wampinterop import RS_HOST, RS_PORT, WS_URL, connect, disconnect


async def main() -> int:
    status = 0
    for transport, where in (("websocket", WS_URL), ("rawsocket", f"{RS_HOST}:{RS_PORT}")):
        try:
            session = await asyncio.wait_for(connect(transport, "json"), 5)
        except BaseException as e:  # noqa: BLE001 - report anything
            print(f"interop: cannot join over {transport} ({where}): {type(e).__name__}: {e}", file=sys.stderr)
            status = 1
        else:
            await disconnect(session)
    return status


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
