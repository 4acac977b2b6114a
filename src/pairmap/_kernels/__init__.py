"""Compiled (numba) kernels. Pure array code only: no pandas, no I/O."""
