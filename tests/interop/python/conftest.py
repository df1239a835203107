"""pytest glue: runs `async def` tests on a fresh asyncio loop with a timeout.

Each coroutine test gets its own event loop (asyncio.run), a hard time limit
(`@pytest.mark.timeout_s(N)`, default TEST_TIMEOUT) and a `peers` fixture
whose sessions are closed at the end of the test, pass or fail.
pytest-timeout (see pytest.ini) is only a last-resort backstop.
"""

import asyncio
import inspect

import pytest

from wampinterop import COMBOS, Peers

TEST_TIMEOUT = 8.0


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout_s(seconds): time limit of an async test")


@pytest.fixture(params=COMBOS, ids=[f"{t}-{s}" for t, s in COMBOS])
def combo(request):
    """(transport, serializer): every basic scenario runs on all 6."""
    return request.param


@pytest.fixture
def peers():
    return Peers()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    fn = pyfuncitem.obj
    if not inspect.iscoroutinefunction(fn):
        return None
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    marker = pyfuncitem.get_closest_marker("timeout_s")
    timeout = float(marker.args[0]) if marker else TEST_TIMEOUT

    async def main():
        task = asyncio.ensure_future(fn(**kwargs))
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                pytest.fail(f"test did not finish within {timeout}s", pytrace=False)
            task.result()
        finally:
            for v in kwargs.values():
                if isinstance(v, Peers):
                    await v.aclose()

    asyncio.run(main())
    return True
