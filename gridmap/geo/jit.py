"""numba-compiled kernels, compiled once per process and cached on disk once per machine.

Each kernel is compiled on first use, once per machine: the machine code is cached beside the
kernel's module (``cache=True``), so a new process only loads it. Kernels release the GIL
(``nogil``), so web threads can run them side by side.
"""
import threading

import numba

_COMPILED = {}
_LOCK = threading.Lock()
_JIT = numba.njit(cache=True, nogil=True)


def compiled(*functions):
    """The compiled versions of ``functions``, in order (plain Python functions numba can compile)."""
    got = _COMPILED.get(functions)
    if got is None:
        with _LOCK:
            got = _COMPILED.get(functions)
            if got is None:
                got = _COMPILED[functions] = tuple(_JIT(f) for f in functions)
    return got
