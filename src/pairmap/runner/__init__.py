"""YAML/JSON-configured analyses (``pairmap run CONFIG.yaml``).

The config format is that of today's copairs runner (``input``,
``preprocessing`` steps, ``average_precision``, ``mean_average_precision``,
``output``, ``plotting``); the older ``data.*`` layout is read too. Unlike
that runner, an unknown section, key or step is an error that names it.

Modules: :mod:`~pairmap.runner.loading` (files, environment variables),
:mod:`~pairmap.runner.schema` (key kinds and checks),
:mod:`~pairmap.runner.validate` (the sections), :mod:`~pairmap.runner.steps`
(preprocessing registry), :mod:`~pairmap.runner.tables` (reading and
splitting tables, with :mod:`~pairmap.runner.sqlfilter` for the lazy Parquet
filter) and :mod:`~pairmap.runner.run` (running and writing).
See ``docs/cli.md`` for the reference.
"""

from pairmap.runner.loading import ConfigError, load_config
from pairmap.runner.run import RunResult, check_config, run_config
from pairmap.runner.steps import STEPS, preprocess
from pairmap.runner.validate import validate_config

__all__ = [
    "STEPS",
    "ConfigError",
    "RunResult",
    "check_config",
    "load_config",
    "preprocess",
    "run_config",
    "validate_config",
]
