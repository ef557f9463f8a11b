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
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import BuiltinFunctionType
from typing import Any, Generic, TypeVar, cast

from dashgen import collector
from dashgen.errors import DashgenError

T = TypeVar("T")
A = TypeVar("A")

#: Declarations below which splitting work over two processes costs more (the fork, the
#: pickled answer) than the second core saves.
SPLIT_FROM = 1_000

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
    with start_isolated(where, what, function, *arguments) as pending:
        return pending.result()


def start_isolated(
    where: str, what: str, function: Callable[..., T], *arguments: Any
) -> Pending[T]:
    """:func:`run_isolated`, begun now and answered by ``result()``, so that the parent can
    work meanwhile. Use it as a context manager: leaving it kills a child whose result was
    never taken (the parent failed first), so that no child outlives its reason."""
    return Pending(where, what, function, arguments)


@contextmanager
def interrupts_held() -> Iterator[None]:
    """A Ctrl-C waits for the end of the block, then lands at once: for imports, whose
    dataclasses make their methods with ``exec`` of a string. CPython 3.11 remembers a
    KeyboardInterrupt raised inside such an ``exec`` and then ends the process by SIGINT
    (exit -2), whatever exit status dashgen asks for (130). A handler that only notes the
    signal, rather than a signal mask: any thread of the process may receive it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    noted: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _: noted.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if noted:  # sent again, to whatever handles it now: Python's raises KeyboardInterrupt
        signal.raise_signal(signal.SIGINT)


def worth_splitting(declarations: int) -> bool:
    """Whether work over this many declarations should use a second core."""
    return declarations >= SPLIT_FROM and second_core()


def second_core() -> bool:
    """Whether a forked child can run beside this process rather than take turns with it."""
    return hasattr(os, "fork") and len(os.sched_getaffinity(0)) > 1


def in_parallel(
    function: Callable[[A], T], here: A, there: A, shared: Sequence[object] = ()
) -> tuple[T, T]:
    """``(function(here), function(there))``, the second in a forked child meanwhile: work
    of dashgen's own split in two, for the second core. An error comes as it would from
    the two calls in order (the parent's first). Objects in ``shared``, which both
    processes hold, cross back by their position instead of pickled whole."""
    pending = Pending("dashgen", "its share of the work", function, (there,), shared)
    with pending:
        mine = function(here)
        return mine, pending.result()


class Pending(Generic[T]):
    """A forked child's answer to come (computed in process where ``fork`` does not exist)."""

    def __init__(
        self,
        where: str,
        what: str,
        function: Callable[..., T],
        arguments: tuple[Any, ...],
        shared: Sequence[object] = (),
    ) -> None:
        self._where, self._what = where, what
        self._function, self._arguments, self._shared = function, arguments, shared
        self._pid: int | None = None
        self._read_end = -1
        self._forked = hasattr(os, "fork")
        if self._forked:
            self._fork()

    def _fork(self) -> None:
        sys.stdout.flush()  # else the child inherits, and writes again, what is still buffered
        sys.stderr.flush()
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(read_end)
            _child(write_end, self._function, self._arguments, self._shared)
        os.close(write_end)
        self._pid, self._read_end = pid, read_end

    def result(self) -> T:
        """The child's result, waiting for it; its DashgenError raised here."""
        if not self._forked:
            return self._function(*self._arguments)
        pid, self._pid = self._pid, None
        if pid is None:
            raise RuntimeError("a child's result is taken once")
        finished = False
        try:
            with os.fdopen(self._read_end, "rb") as pipe:
                payload = pipe.read()
            _, status = os.waitpid(pid, 0)
            finished = True
        finally:
            if not finished:  # Ctrl-C or SIGTERM in the parent: the child goes too
                _kill(pid)
        return cast(T, _answer(self._where, self._what, payload, status, self._shared))

    def __enter__(self) -> Pending[T]:
        return self

    def __exit__(self, *_: object) -> None:
        if self._pid is not None:  # never asked for: the parent failed before it needed it
            os.close(self._read_end)
            _kill(self._pid)
            self._pid = None


def _child(
    write_end: int,
    function: Callable[..., Any],
    arguments: tuple[Any, ...],
    shared: Sequence[object],
) -> None:
    """Run, send ``("ok", result)`` or ``("error", where, message)``, and leave at once:
    ``os._exit`` neither waits for the user's threads nor runs their ``atexit`` hooks."""
    code = 0
    # The child's garbage collector would visit, and so copy, every page it shares with the
    # parent; the child lives for one import, so it collects nothing.
    gc.disable()
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):  # the parent's to report, but a
            if signal.getsignal(signum) is not signal.SIG_IGN:  # dashgen run in the
                signal.signal(signum, signal.SIG_DFL)  # background (`&`) ignores Ctrl-C
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
            data = dumps_plain(message, shared)
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


def _answer(where: str, what: str, payload: bytes, status: int, shared: Sequence[object]) -> object:
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
        message = loads_plain(payload, shared)
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


def dumps_plain(value: object, shared: Sequence[object] = ()) -> bytes:
    """Pickle dashgen's plain data (and nothing else: a foreign class is an error); each
    object of ``shared`` as its position there."""
    buffer = io.BytesIO()
    _PlainPickler(buffer, shared).dump(value)
    return buffer.getvalue()


def loads_plain(data: bytes, shared: Sequence[object] = ()) -> Any:
    """Unpickle what :func:`dumps_plain` wrote, with the same ``shared``; any other class
    is refused. Every object it makes is new and kept, so with the collector on it traced
    them as they came: half the time of a large answer."""
    with collector.paused():
        return _TrustedUnpickler(io.BytesIO(data), shared).load()


def _shared_object(position: int) -> object:
    """What a pickle calls to get back a shared object: only by name, since the unpickler
    answers that call from its own ``shared``."""
    raise pickle.UnpicklingError(f"shared object {position} read outside loads_plain")


def _trusted(module: str, name: str) -> bool:
    return module.startswith("dashgen.") or (module, name) in _TRUSTED_CLASSES


def _refusal(module: str, name: str) -> str:
    return f"the declarations hold a {module}.{name} object: use plain str, int and float values"


class _PlainPickler(pickle.Pickler):
    """Pickles dashgen's data and plain builtins only, so that the parent can take it."""

    def __init__(self, buffer: io.BytesIO, shared: Sequence[object]) -> None:
        super().__init__(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        # By identity: the objects live as long as the pickling, so no id is reused.
        self._positions = {id(item): index for index, item in enumerate(shared)}

    def reducer_override(self, obj: Any) -> Any:
        position = self._positions.get(id(obj))
        if position is not None:
            return _shared_object, (position,)
        if obj is _shared_object:
            return NotImplemented
        # A class or builtin function is pickled by its name (``getattr`` rebuilds enums).
        kind = obj if isinstance(obj, type | BuiltinFunctionType) else type(obj)
        if not _trusted(kind.__module__, kind.__qualname__):
            raise pickle.PicklingError(_refusal(kind.__module__, kind.__qualname__))
        return NotImplemented


class _TrustedUnpickler(pickle.Unpickler):
    """Refuses every class but dashgen's and plain builtins: unpickling a user's class
    would import (run) the user's module in the parent."""

    def __init__(self, buffer: io.BytesIO, shared: Sequence[object]) -> None:
        super().__init__(buffer)
        self._shared = shared

    def _shared_at(self, position: int) -> object:
        if not isinstance(position, int) or not 0 <= position < len(self._shared):
            raise pickle.UnpicklingError(f"no shared object at {position!r}")
        return self._shared[position]

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == (__name__, _shared_object.__name__):
            return self._shared_at
        if _trusted(module, name):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(_refusal(module, name))
