#!/usr/bin/python3
"""Times one Newton–Schulz step written with numpy's matmul, the reference
outside Go for docs/solve.md's figures (not one of the project's tests).

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 docs/newtonschulz_numpy.py
    OPENBLAS_NUM_THREADS=2 /usr/bin/python3 docs/newtonschulz_numpy.py

Debian's python3-numpy calls the BLAS of the alternatives system: install
libopenblas0-pthread for OpenBLAS (numpy.show_config() does not say which
library the alternative points to; ls -l /etc/alternatives/libblas.so.3*
does). The rate counts the flops of the three dense products, as
BenchmarkNewtonSchulz does: 2m²n + 2m³ + 2m²n for an m×n matrix, m ≤ n.
"""
import os
import time

import numpy as np

A, B, C = 3.4445, -4.775, 2.0315


def step(x):
    m = x @ x.T
    b = B * m + C * (m @ m)
    return A * x + b @ x


def main():
    rng = np.random.default_rng(5)
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "?")
    for dtype in (np.float32, np.float64):
        for r, c in ((256, 256), (512, 512), (1024, 1024), (1024, 4096)):
            x = rng.uniform(-1, 1, (r, c)).astype(dtype)
            x /= np.linalg.norm(x)
            x = step(x)  # warm up
            best = float("inf")
            reps = max(3, int(2e9 / (r * r * c)))
            for _ in range(6):
                t0 = time.perf_counter()
                for _ in range(reps):
                    y = step(x)
                best = min(best, (time.perf_counter() - t0) / reps)
            m, n = min(r, c), max(r, c)
            flops = 2 * m * m * n + 2 * m * m * m + 2 * m * m * n
            print(f"numpy {np.dtype(dtype).name} {r}x{c} threads={threads}: "
                  f"{best * 1e3:.3f} ms/step, {flops / best / 1e9:.1f} GFLOP/s")
            del y


if __name__ == "__main__":
    main()
