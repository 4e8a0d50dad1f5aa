"""Whole-run validation before the first compile, and loading of config files.

`validate_run` checks the study config, the grid-level settings (chunk size, checkpoint interval, processes)
and the output folder (another grid's results, a newer schema, a malformed layout). Every failure is a
ConfigError naming the setting, its value, the allowed range and a fix. Nothing here traces or compiles.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from robustprune.config import ConfigError, StudyConfig, _suggest, check_positive_int
from robustprune.distributed import ProcessSettings

# Every section of a study config (env, network, ppo, prune, eval, ...), by the field's default class.
SECTIONS = {f.name: type(f.default) for f in dataclasses.fields(StudyConfig) if dataclasses.is_dataclass(f.default)}


def shard_dir(out_dir: Path, process_id: int) -> Path:
    """Where process `process_id` keeps its chunks and its result shard."""
    return Path(out_dir) / "shards" / f"host_{process_id}"


def _section(name: str, cls, data) -> object:
    if not isinstance(data, dict):
        raise ConfigError(f"config section {name!r} must be a JSON object of settings, got {type(data).__name__}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            raise ConfigError(f"{name}.{key} is not a setting. Allowed settings of {name}: "
                              f"{', '.join(fields)}." + _suggest(key, fields))
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    for key, value in values.items():
        default = getattr(cls(), key)
        if isinstance(default, (int, float)) and not isinstance(default, bool) and not isinstance(value, (int, float)):
            raise ConfigError(f"{name}.{key}={value!r} is invalid: it must be a number like {default!r}.")
    return cls(**values)


def config_from_dict(data: dict) -> StudyConfig:
    """Build a StudyConfig from nested dicts (as `StudyConfig.to_dict` writes), checking every key."""
    if not isinstance(data, dict):
        raise ConfigError(f"a config file must hold one JSON object with the sections {', '.join(SECTIONS)}.")
    top = {f.name for f in dataclasses.fields(StudyConfig)}
    for key in data:
        if key not in top:
            raise ConfigError(f"config key {key!r} is not a setting. Allowed keys: {', '.join(sorted(top))}."
                              + _suggest(key, top))
    kwargs = {name: _section(name, cls, data[name]) for name, cls in SECTIONS.items() if name in data}
    if "seeds" in data:
        seeds = data["seeds"]
        kwargs["seeds"] = tuple(seeds) if isinstance(seeds, list) else seeds
    for key in ("name", "notes"):
        if key in data:
            kwargs[key] = str(data[key])
    return StudyConfig(**kwargs)


def load_config_file(path: str | Path) -> StudyConfig:
    """Read and validate a JSON config file. Malformed or truncated files raise ConfigError with the position."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"--config={str(path)!r} cannot be read ({err}). Give a readable JSON file.") from err
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"--config={str(path)!r} is not valid JSON: {err.msg} at line {err.lineno}, column "
                          f"{err.colno} (a truncated file ends early). Fix the file, or write a fresh one from a "
                          "run folder's run.json 'config' entry.") from err
    try:
        return config_from_dict(data).validate()
    except TypeError as err:
        raise ConfigError(f"--config={str(path)!r} has a setting of the wrong kind ({err}).") from err


def check_grid_settings(cfg: StudyConfig, *, chunk_size, checkpoint_every, process: ProcessSettings) -> None:
    """Check the settings of the grid as a whole: chunking, checkpoint interval and processes."""
    process.validate()
    if chunk_size is not None:
        check_positive_int("--chunk-size", chunk_size)
    if checkpoint_every is not None:
        check_positive_int("--checkpoint-every", checkpoint_every)
        if checkpoint_every > cfg.ppo.num_updates:
            raise ConfigError(f"--checkpoint-every={checkpoint_every} updates is outside the allowed range "
                              f"[1, {cfg.ppo.num_updates}] (ppo.num_updates): training would never be "
                              "checkpointed. Give at most the number of updates, or leave it out.")
    if process.num_processes > cfg.num_cells:
        raise ConfigError(f"--num-processes={process.num_processes} exceeds the grid's {cfg.num_cells} cells: "
                          f"some processes would have no cell. Use at most {cfg.num_cells} processes.")


def check_shard_folder(out_dir: Path, cfg: StudyConfig, *, overwrite: bool, chunk_size, process: ProcessSettings
                       ) -> int | None:
    """Check this process's shard folder against the grid. Returns the chunk size it was started with, if any.

    A folder started by another config is refused unless `overwrite`, which deletes its shard. A folder
    started with another chunk size or process count is refused (the chunks would not line up).
    """
    from robustprune.grid import read_layout
    from robustprune.results import config_hash

    folder = shard_dir(out_dir, process.process_id)
    try:
        layout = read_layout(folder)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{folder / 'layout.json'} is malformed or truncated ({err}). Pass --overwrite to "
                          "start this folder afresh, or choose another --out folder.") from err
    if layout is None:
        return None
    if layout.get("config_hash") != config_hash(cfg):
        if not overwrite:
            raise ConfigError(f"{out_dir} holds unfinished work of a different config (hash "
                              f"{layout.get('config_hash')}, this config is {config_hash(cfg)}). Choose another "
                              "--out folder or pass --overwrite.")
        shutil.rmtree(folder)
        return None
    mismatch = layout.get("num_processes") != process.num_processes or (
        chunk_size is not None and layout.get("chunk_size") != chunk_size)
    if mismatch and overwrite:
        shutil.rmtree(folder)
        return None
    if layout.get("num_processes") != process.num_processes:
        raise ConfigError(f"--num-processes={process.num_processes} differs from the {layout.get('num_processes')} "
                          f"that started {out_dir}. Use {layout.get('num_processes')}, or pass --overwrite.")
    if chunk_size is not None and layout.get("chunk_size") != chunk_size:
        raise ConfigError(f"--chunk-size={chunk_size} differs from the {layout.get('chunk_size')} cells that "
                          f"started {out_dir}. Leave --chunk-size out to resume, or pass --overwrite.")
    return layout.get("chunk_size")


def validate_run(cfg: StudyConfig, out_dir: Path, *, overwrite: bool = False, chunk_size=None,
                 checkpoint_every=None, process: ProcessSettings | None = None) -> int | None:
    """Check everything a run needs before anything compiles. Returns a chunk size to resume with, or None."""
    from robustprune.results import check_run_dir

    process = process or ProcessSettings()
    cfg.validate()
    check_grid_settings(cfg, chunk_size=chunk_size, checkpoint_every=checkpoint_every, process=process)
    check_run_dir(Path(out_dir), cfg, overwrite=overwrite)
    return check_shard_folder(Path(out_dir), cfg, overwrite=overwrite, chunk_size=chunk_size, process=process)
