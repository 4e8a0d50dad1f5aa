"""robustprune: does pruning a deep-RL policy make it more robust to adversarial observation perturbations?"""

__version__ = "0.1.0"
SCHEMA_VERSION = 1
