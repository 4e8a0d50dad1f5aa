"""robustprune: does pruning a deep-RL policy make it more robust to adversarial observation perturbations?"""

__version__ = "0.1.0"
SCHEMA_VERSION = 1

_API = ("run_preset", "load_run", "summarize", "configure", "RunTables")


def __getattr__(name: str):
    """Import the Python API lazily, so `import robustprune` stays fast and imports no JAX."""
    if name in _API:
        from robustprune import api

        return getattr(api, name)
    raise AttributeError(f"module 'robustprune' has no attribute {name!r}")
