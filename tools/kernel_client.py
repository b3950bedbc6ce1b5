"""A Jupyter kernel manager for papermill whose client never waits on a message already in its queue.

jupyter_client's asyncio channels wait for the socket's edge-triggered ``ZMQ_FD``. Now and then the
kernel's reply lands in the queue without that edge reaching the event loop, and papermill then waits
forever on an idle kernel (seen in the course's runs at a cell that displays a widget: the shell socket
held the ``execute_reply``, ``POLLIN`` set, while nbclient's poll future stayed pending). A poll with a
timeout ends in a real ``zmq_poll``, which sees the message, so these channels poll once a second.

    pm.execute_notebook(src, dst, kernel_manager_class=PolledKernelManager)
"""
from __future__ import annotations

import time
from queue import Empty
from typing import Any

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.manager import AsyncKernelManager
from traitlets import Type, default

POLL_S = 1.0  # the longest a message can sit in the queue unnoticed


class PolledChannel(AsyncZMQSocketChannel):
    """An asyncio kernel channel that looks at its socket at least every ``POLL_S`` seconds while it waits."""

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:
        """The next message; ``Empty`` once ``timeout`` seconds pass without one (``None``: wait for it)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = POLL_S if deadline is None else max(0.0, min(POLL_S, deadline - time.monotonic()))
            try:
                return await super().get_msg(timeout=left)
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise


class PolledKernelClient(AsyncKernelClient):
    """nbclient's kernel client with polled shell and IOPub channels (the two it waits on)."""

    shell_channel_class = Type(PolledChannel)
    iopub_channel_class = Type(PolledChannel)


class PolledKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` whose ``client()`` is a ``PolledKernelClient``."""

    @default("client_factory")
    def _client_factory_default(self) -> type:
        return PolledKernelClient
