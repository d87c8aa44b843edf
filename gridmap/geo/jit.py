"""numba-compiled kernels, compiled once per process and cached on disk once per machine.

numba is imported on first use (≈ 0.5 s to import) and compiles each kernel once per machine:
the machine code is cached beside the kernel's module (``cache=True``), so a new process only
loads it. Kernels release the GIL (``nogil``), so web threads can run them side by side.
"""
import threading

_COMPILED = {}
_LOCK = threading.Lock()


def compiled(*functions):
    """The compiled versions of ``functions``, in order (plain Python functions numba can compile)."""
    got = _COMPILED.get(functions)
    if got is None:
        with _LOCK:
            got = _COMPILED.get(functions)
            if got is None:
                import numba

                jit = numba.njit(cache=True, nogil=True)
                got = _COMPILED[functions] = tuple(jit(f) for f in functions)
    return got
