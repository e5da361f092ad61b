"""The report's kernel client: a message whose wake-up was lost is still read (handlab._kernel)."""

import asyncio
import time
from queue import Empty

import pytest
import zmq
import zmq.asyncio
from jupyter_client.session import Session

from handlab import _kernel
from handlab._kernel import KernelManager, SlicedPollChannel


class StrandedSocket(zmq.asyncio.Socket):
    """A real socket whose waiting poll never wakes (a lost edge-triggered wake-up); a
    zero-timeout poll still asks libzmq."""

    async def _sleep_through(self, timeout):
        await asyncio.sleep((timeout or 0) / 1000)
        return 0

    def poll(self, timeout=None, flags=zmq.POLLIN):
        if timeout == 0:
            return super().poll(0, flags)
        return asyncio.ensure_future(self._sleep_through(timeout))


def _pair(socket_class=zmq.asyncio.Socket):
    ctx = zmq.asyncio.Context()
    a = ctx.socket(zmq.PAIR)
    port = a.bind_to_random_port("tcp://127.0.0.1")
    b = socket_class(ctx, zmq.PAIR)
    b.connect(f"tcp://127.0.0.1:{port}")
    return ctx, a, b


def _run(coro):
    return asyncio.new_event_loop().run_until_complete(coro)


@pytest.mark.parametrize("socket_class", [zmq.asyncio.Socket, StrandedSocket])
def test_sliced_channel_reads_a_message(socket_class, monkeypatch):
    monkeypatch.setattr(_kernel, "POLL_SLICE_S", 0.2)
    session = Session(key=b"k")

    async def main():
        ctx, a, b = _pair(socket_class)
        channel = SlicedPollChannel(b, session)
        await asyncio.sleep(0.2)  # connected
        session.send(a, "execute_reply", {"status": "ok"})
        start = time.monotonic()
        msg = await channel.get_msg(timeout=30)
        took = time.monotonic() - start
        a.close(0)
        b.close(0)
        ctx.term()
        return msg, took

    msg, took = _run(main())
    assert msg["msg_type"] == "execute_reply" and msg["content"] == {"status": "ok"}
    assert took < 5  # within a slice or two, not the 30 s timeout


def test_sliced_channel_times_out_with_empty(monkeypatch):
    monkeypatch.setattr(_kernel, "POLL_SLICE_S", 0.1)

    async def main():
        ctx, a, b = _pair()
        channel = SlicedPollChannel(b, Session(key=b"k"))
        start = time.monotonic()
        with pytest.raises(Empty):
            await channel.get_msg(timeout=0.35)
        took = time.monotonic() - start
        a.close(0)
        b.close(0)
        ctx.term()
        return took

    assert 0.3 <= _run(main()) < 3


def test_the_stock_channel_misses_what_the_sliced_one_reads():
    """The failure the fix is for, shown on the same stranded socket: jupyter_client's
    channel waits out its whole timeout although the message is there."""
    from jupyter_client.channels import AsyncZMQSocketChannel

    session = Session(key=b"k")

    async def main():
        ctx, a, b = _pair(StrandedSocket)
        await asyncio.sleep(0.2)
        session.send(a, "execute_reply", {"status": "ok"})
        await asyncio.sleep(0.2)
        with pytest.raises(Empty):
            await AsyncZMQSocketChannel(b, session).get_msg(timeout=0.5)
        msg = await SlicedPollChannel(b, session).get_msg(timeout=0.5)
        a.close(0)
        b.close(0)
        ctx.term()
        return msg

    assert _run(main())["content"] == {"status": "ok"}


def test_the_manager_builds_sliced_channels():
    km = KernelManager()
    client = km.client()
    assert client.shell_channel_class is SlicedPollChannel
    assert client.iopub_channel_class is SlicedPollChannel
