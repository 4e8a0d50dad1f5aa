"""Several devices and several hosts: a device mesh over the cell axis, and each process's share of cells.

One process per host runs `jax.distributed.initialize()`. Each process trains, evaluates and certifies its
own contiguous share of the grid on its local devices, and writes its results under `shards/host_<i>/`.
After `jax.distributed.initialize()` returns, the grid code runs no collective across hosts, so a slow host does
not hold up the others' cells. NOTE: orbax and JAX may still wait for every process at start-up and exit.
Loading the run folder merges the shards.
"""

from __future__ import annotations

import dataclasses
import logging
import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from robustprune.config import ConfigError, check_positive_int

logger = logging.getLogger(__name__)

CELL_AXIS = "cells"
ENV_COORDINATOR = "ROBUSTPRUNE_COORDINATOR"
ENV_NUM_PROCESSES = "ROBUSTPRUNE_NUM_PROCESSES"
ENV_PROCESS_ID = "ROBUSTPRUNE_PROCESS_ID"


@dataclasses.dataclass(frozen=True)
class ProcessSettings:
    """Multi-host settings: coordinator 'host:port', number of processes and this process's index."""

    coordinator: str | None = None
    num_processes: int = 1
    process_id: int = 0

    @classmethod
    def from_env(cls, coordinator=None, num_processes=None, process_id=None) -> "ProcessSettings":
        """Take each setting from its argument, else from its ROBUSTPRUNE_* environment variable."""
        def env_int(name, value, default):
            if value is not None:
                return value
            text = os.environ.get(name)
            if text is None:
                return default
            try:
                return int(text)
            except ValueError as err:
                raise ConfigError(f"{name}={text!r} is invalid: it must be an integer.") from err

        return cls(
            coordinator=coordinator or os.environ.get(ENV_COORDINATOR),
            num_processes=env_int(ENV_NUM_PROCESSES, num_processes, 1),
            process_id=env_int(ENV_PROCESS_ID, process_id, 0),
        )

    def validate(self) -> "ProcessSettings":
        check_positive_int("--num-processes", self.num_processes)
        if not isinstance(self.process_id, int) or not 0 <= self.process_id < self.num_processes:
            raise ConfigError(f"--process-id={self.process_id!r} is outside the allowed range "
                              f"[0, {self.num_processes - 1}]: give each of the {self.num_processes} processes "
                              "a distinct index from 0.")
        if self.num_processes > 1:
            host, _, port = (self.coordinator or "").rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ConfigError(f"--coordinator={self.coordinator!r} is invalid: with --num-processes > 1 give "
                                  "the address of process 0 as host:port, e.g. 10.0.0.1:12345.")
        return self


def initialize(settings: ProcessSettings) -> ProcessSettings:
    """Join the JAX distributed runtime when there are several processes. Returns the settings in effect."""
    if settings.num_processes > 1:
        jax.distributed.initialize(settings.coordinator, settings.num_processes, settings.process_id)
        logger.info("Process %d of %d joined %s; %d local devices, %d global", jax.process_index(),
                    jax.process_count(), settings.coordinator, jax.local_device_count(), jax.device_count())
    return settings


def process_share(num_items: int, process_id: int, num_processes: int) -> range:
    """The contiguous, balanced share of `num_items` that process `process_id` handles."""
    bounds = np.linspace(0, num_items, num_processes + 1).round().astype(int)
    return range(int(bounds[process_id]), int(bounds[process_id + 1]))


def local_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D mesh named 'cells' over this process's devices (all of them, or the first `num_devices`)."""
    devices = jax.local_devices()[: num_devices or None]
    return Mesh(np.asarray(devices), (CELL_AXIS,))


def cell_sharding(mesh: Mesh) -> NamedSharding:
    """Shard the leading (cell) axis of every array over the mesh."""
    return NamedSharding(mesh, PartitionSpec(CELL_AXIS))
