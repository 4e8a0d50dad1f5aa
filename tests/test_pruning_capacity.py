"""Capacity-control cells: dense, narrower networks trained in their own program per width."""

import dataclasses

import numpy as np

from robustprune.cell_groups import network_groups, train_cell_groups
from robustprune.grid import expand_cells
from robustprune.networks import mean_kernels
from robustprune.presets import get_preset
from robustprune.pruning import num_kernel_weights


def test_capacity_cells_train_dense_with_matched_weight_count():
    cfg = get_preset("smoke")
    cfg = dataclasses.replace(cfg, prune=dataclasses.replace(cfg.prune, sparsities=(0.0, 0.8), capacity_control=True),
                              seeds=(0,)).validate()
    cells = expand_cells(cfg)
    groups = network_groups(cfg, cells)
    assert [len(members) for _, members in groups] == [2, 1]
    assert groups[0][0].network.hidden_sizes == cfg.network.hidden_sizes

    trained = train_cell_groups(cfg, cells, progress=False)
    group_cfg, members, out = trained[1]
    kernels = mean_kernels(out.state.params["policy"], len(group_cfg.network.hidden_sizes))
    obs, act = kernels[0].shape[1], kernels[-1].shape[2]
    dense_count = num_kernel_weights(obs, act, cfg.network.hidden_sizes)
    count = sum(k.shape[1] * k.shape[2] for k in kernels)
    assert abs(count - 0.2 * dense_count) < 0.05 * dense_count
    assert all(np.all(np.asarray(m) == 1) for m in out.state.masks)
    assert members[0].capacity_of == 0.8
