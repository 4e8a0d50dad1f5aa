"""robustprune: does pruning a deep-RL policy make it more robust to adversarial observation perturbations?"""

import os

__version__ = "0.1.0"
SCHEMA_VERSION = 1


def _single_threaded_eigen() -> None:
    """Turn off XLA's multi-threaded Eigen pool on CPU unless the user set that flag.

    NOTE: with jax 0.10.2 on a 2-core CPU, vmapped training programs sometimes hung forever while their
    result was read back, with every thread idle. The same workaround fixed the same symptom in
    PyAutoFit (github.com/PyAutoLabs/PyAutoFit, issue 1530). The flag only affects the CPU backend and
    must be set before JAX initializes it; set `xla_cpu_multi_thread_eigen` in XLA_FLAGS to override.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false").strip()


_single_threaded_eigen()

_API = ("run_preset", "load_run", "summarize", "configure", "RunTables")


def __getattr__(name: str):
    """Import the Python API lazily, so `import robustprune` stays fast and imports no JAX."""
    if name in _API:
        from robustprune import api

        return getattr(api, name)
    raise AttributeError(f"module 'robustprune' has no attribute {name!r}")
