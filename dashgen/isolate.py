"""Run the user's code in a child process that hands back plain data or one error.

Importing dashboard sources (or an ``--instruments`` callable) runs code dashgen does not
control: it may call ``os._exit(0)`` (a silent green ``build --check``), start a non-daemon
thread (a hung pre-commit hook), raise ``KeyboardInterrupt`` or ``GeneratorExit``, or edit
``sys.path`` and ``sys.meta_path``. So that code runs in a forked child, which inherits the
parent's imports (cheap: nothing is imported twice) and sends back its result pickled; the
parent only unpickles dashgen's own data types, never a class of the user's, so no user
code ever runs in the parent. Where ``fork`` does not exist, the function runs in process.
"""

from __future__ import annotations

import gc
import io
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Callable
from types import BuiltinFunctionType
from typing import Any, TypeVar, cast

from dashgen.errors import DashgenError

T = TypeVar("T")

#: Callables besides dashgen's classes that may cross from the child (``getattr`` is how
#: an enum member is pickled: by its class, which must be dashgen's, and its name).
_TRUSTED_CLASSES = frozenset(
    ("builtins", name)
    for name in ("tuple", "list", "dict", "set", "frozenset", "str", "int", "float", "getattr")
)


def run_isolated(where: str, what: str, function: Callable[..., T], *arguments: Any) -> T:
    """``function(*arguments)`` in a forked child; its result, or its DashgenError raised
    here. ``where`` names what runs (a sources dir, a callable) and ``what`` its result
    ("its declarations") in messages about a child that never answered."""
    if not hasattr(os, "fork"):
        return function(*arguments)
    sys.stdout.flush()  # else the child inherits, and writes again, what is still buffered
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        _child(write_end, function, arguments)
    os.close(write_end)
    finished = False
    try:
        with os.fdopen(read_end, "rb") as pipe:
            payload = pipe.read()
        _, status = os.waitpid(pid, 0)
        finished = True
    finally:
        if not finished:  # Ctrl-C or SIGTERM in the parent: the child goes too
            _kill(pid)
    return cast(T, _answer(where, what, payload, status))


def _child(write_end: int, function: Callable[..., Any], arguments: tuple[Any, ...]) -> None:
    """Run, send ``("ok", result)`` or ``("error", where, message)``, and leave at once:
    ``os._exit`` neither waits for the user's threads nor runs their ``atexit`` hooks."""
    code = 0
    # The child's garbage collector would visit, and so copy, every page it shares with the
    # parent; the child lives for one import, so it collects nothing.
    gc.disable()
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C is the parent's to report
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            message: tuple[Any, ...] = ("ok", function(*arguments))
        except DashgenError as error:
            message = ("error", error.where, error.message)
        except BaseException as error:  # anything the user's code raised but our own
            frames = traceback.extract_tb(error.__traceback__)
            last = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""
            text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            message = ("error", last, text)
        try:
            data = dumps_plain(message)
        except pickle.PicklingError as error:
            data = pickle.dumps(("error", "", str(error)))
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(data)
    except BaseException:
        code = 70
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _answer(where: str, what: str, payload: bytes, status: int) -> object:
    if not payload:
        if os.WIFSIGNALED(status):
            ended = f"was killed by signal {os.WTERMSIG(status)}"
        else:
            ended = f"exited with code {os.waitstatus_to_exitcode(status)}"
        raise DashgenError(
            where,
            f"{ended} before handing back {what}: code that dashgen runs must not end the process",
        )
    try:
        message = loads_plain(payload)
    except pickle.UnpicklingError as error:
        raise DashgenError(where, str(error)) from None
    if message[0] == "ok":
        return message[1]
    raise DashgenError(message[1] or where, message[2])


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def dumps_plain(value: object) -> bytes:
    """Pickle dashgen's plain data (and nothing else: a foreign class is an error)."""
    buffer = io.BytesIO()
    _PlainPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


def loads_plain(data: bytes) -> Any:
    """Unpickle what :func:`dumps_plain` wrote; any other class is refused."""
    return _TrustedUnpickler(io.BytesIO(data)).load()


def _trusted(module: str, name: str) -> bool:
    return module.startswith("dashgen.") or (module, name) in _TRUSTED_CLASSES


def _refusal(module: str, name: str) -> str:
    return f"the declarations hold a {module}.{name} object: use plain str, int and float values"


class _PlainPickler(pickle.Pickler):
    """Pickles dashgen's data and plain builtins only, so that the parent can take it."""

    def reducer_override(self, obj: Any) -> Any:
        # A class or builtin function is pickled by its name (``getattr`` rebuilds enums).
        kind = obj if isinstance(obj, type | BuiltinFunctionType) else type(obj)
        if not _trusted(kind.__module__, kind.__qualname__):
            raise pickle.PicklingError(_refusal(kind.__module__, kind.__qualname__))
        return NotImplemented


class _TrustedUnpickler(pickle.Unpickler):
    """Refuses every class but dashgen's and plain builtins: unpickling a user's class
    would import (run) the user's module in the parent."""

    def find_class(self, module: str, name: str) -> Any:
        if _trusted(module, name):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(_refusal(module, name))
