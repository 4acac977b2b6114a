"""Former home of the config runner; kept so ``from pairmap.config import ...`` still works.

The runner now lives in :mod:`pairmap.runner`.
"""

from pairmap.runner import (  # noqa: F401
    ConfigError,
    RunResult,
    load_config,
    preprocess,
    run_config,
    validate_config,
)

__all__ = ["ConfigError", "RunResult", "load_config", "preprocess", "run_config",
           "validate_config"]
