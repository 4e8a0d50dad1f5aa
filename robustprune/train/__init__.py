"""PPO training of masked policies, batched over the cells of a grid."""

from robustprune.train.ppo import TRACE_COUNT, train, train_update
from robustprune.train.state import CellParams, TrainState, init_train_state, make_cell_params, stack_cells

__all__ = [
    "TRACE_COUNT",
    "CellParams",
    "TrainState",
    "init_train_state",
    "make_cell_params",
    "stack_cells",
    "train",
    "train_update",
]
