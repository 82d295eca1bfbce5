"""The kernel manager every notebook execution uses (:func:`kernel_manager`).

How a page's kernel is reached decides nothing about what the page holds, so this module is no
part of a page's stamp (:mod:`pruneplast.keys`), unlike :mod:`.execution`.
"""

from __future__ import annotations

import functools
import os
import shutil
import socket
import tempfile
from pathlib import Path

#: The longest socket path (bytes) used: Linux holds 107 in a Unix-domain socket's address, macOS
#: 103; a kernel's are ``<folder>/k-<n>``.
IPC_PATH_MAX = 100


def _can_listen(folder: str) -> bool:
    """Whether a Unix-domain socket can be bound in ``folder`` (not on every file system)."""
    path = os.path.join(folder, "probe")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.bind(path)
        return True
    except OSError:
        return False
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass


def _ipc_folder() -> str | None:
    """A new private folder for one kernel's sockets, or None where there is none to be had.

    In ``$TMPDIR`` as it is now (a run points it at a scratch folder removed when the run ends,
    even a killed one; ``tempfile``'s own choice is fixed at its first use), else in /tmp where that
    path is too long or cannot hold sockets."""
    if os.name != "posix" or not hasattr(socket, "AF_UNIX"):
        return None
    for parent in (os.environ.get("TMPDIR") or None, "/tmp"):
        try:
            folder = tempfile.mkdtemp(prefix="pruneplast-kernel-", dir=parent)
        except OSError:
            continue
        if len(os.fsencode(os.path.join(folder, "k-99999"))) <= IPC_PATH_MAX and _can_listen(folder):
            return folder
        shutil.rmtree(folder, ignore_errors=True)
    return None


@functools.cache
def kernel_manager(log: Path | None = None):
    """The kernel manager class every execution uses (one class per kernel log).

    Its kernel listens on Unix-domain sockets in a private folder of its own (removed when the
    kernel ends), not on TCP ports of localhost. jupyter_client picks a kernel's TCP ports by
    opening and closing sockets before the kernel binds them, so two kernels started at the same
    moment by two processes (the pages of a side-by-side build) can be handed the same port, and
    one of them dies before it replies (``Kernel died before replying to kernel_info``). Socket
    files in folders of their own cannot collide. Where there are none (Windows, or no folder whose
    path is short enough and can hold sockets) the kernel uses TCP as jupyter_client does, with
    that race.

    With ``log``, the kernel writes its own stdout and stderr there: its console output (start-up
    warnings, the tracebacks it prints when a Ctrl-C reaches it) then stays out of the terminal;
    cell outputs and errors reach papermill as usual.
    """
    from jupyter_client.localinterfaces import localhost
    from jupyter_client.manager import AsyncKernelManager

    class PageKernelManager(AsyncKernelManager):
        ipc_folder: str | None = None

        async def _async_pre_start_kernel(self, **kw):
            if self.ipc_folder is None:
                self.ipc_folder = _ipc_folder()
                if self.ipc_folder is not None:
                    self.transport, self.cache_ports = "ipc", False
                    self.ip = os.path.join(self.ipc_folder, "k")
                elif self.transport == "ipc":  # started again, and no folder this time
                    self.transport, self.ip = "tcp", localhost()
            return await super()._async_pre_start_kernel(**kw)

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            if log is None:
                return await super()._async_launch_kernel(kernel_cmd, **kw)
            with open(log, "ab") as fh:  # the kernel process keeps its own copy of the descriptor
                kw["stdout"] = kw["stderr"] = fh
                return await super()._async_launch_kernel(kernel_cmd, **kw)

        async def _async_cleanup_resources(self, restart: bool = False) -> None:
            await super()._async_cleanup_resources(restart=restart)
            if not restart and self.ipc_folder is not None:
                shutil.rmtree(self.ipc_folder, ignore_errors=True)
                self.ipc_folder = None

    return PageKernelManager
