"""Reading the official pickle-based data files without letting them run code.

The ModelNet FPS caches (``.dat``) and the few-shot episodes (``.pkl``) are pickles of lists,
tuples, dicts, strings, numbers and numpy arrays. A plain ``pickle.load`` would call whatever
callable a crafted file names (``os.system``, ``builtins.exec``, ...) before the loader could see
that the content is wrong. :func:`load_pickle` admits only the few callables that numpy's own
pickles need to rebuild arrays, dtypes and scalars, and refuses any other reference by raising
:class:`recon.errors.DataFormatError` naming the file, before that reference is ever called.
"""

from __future__ import annotations

import os
import pickle

from recon.errors import DataFormatError

__all__ = ["ALLOWED", "load_pickle"]

# (module, name) pairs that numpy >= 1.16 and 2.x write when pickling arrays, dtypes and scalars
# under protocols 0-5 (numpy 2 writes ``numpy._core``, numpy 1 ``numpy.core``); ``_codecs.encode``
# carries bytes in protocol 0-2 pickles. Containers, str and numbers need no lookup at all.
ALLOWED = frozenset(
    [("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")]
    + [(f"numpy.{core}.multiarray", n) for core in ("core", "_core") for n in ("_reconstruct", "scalar")]
    + [(f"numpy.{core}.numeric", "_frombuffer") for core in ("core", "_core")]
)


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, path: str, dataset: str):
        super().__init__(file)
        self._path, self._dataset = path, dataset

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED:
            raise DataFormatError(
                f"{self._dataset}: refusing to read {self._path!r}: it refers to {module}.{name}, which the "
                "official files never hold (they contain only lists, dicts, strings, numbers and numpy "
                "arrays); a crafted pickle could run code, so nothing from it was executed"
            )
        return super().find_class(module, name)

    def persistent_load(self, pid):
        raise DataFormatError(f"{self._dataset}: refusing to read {self._path!r}: it holds a persistent id")


def load_pickle(path: str | os.PathLike, dataset: str) -> object:
    """Unpickle an official data file, admitting only numpy arrays/dtypes/scalars and plain containers.

    Raises:
        DataFormatError: the file refers to anything else (names the file and the reference).
        OSError, pickle.UnpicklingError, EOFError, ...: a truncated or garbled file (the callers
            turn these into their malformed-file error).
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        return _RestrictedUnpickler(f, path, dataset).load()
