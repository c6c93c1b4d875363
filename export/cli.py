"""One-line errors for the Hydra apps of export/ and serve/.

`@hydra.main` prints composition errors (an unknown key, a wrong type, a missing value) as a
multi-line report and exits 1. `precheck` composes the same config first, runs the app's own
checks, and turns the first problem into "config key 'x': reason" (exit 2, like the app's other
errors), before Hydra creates any folder. Hydra's own flags (--help, --cfg, -m) skip it.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

CONF = Path(__file__).resolve().parents[1] / "conf"
_HYDRA_PREFIXES = ("hydra.", "hydra/", "+hydra", "++hydra", "~hydra")


def one_line(e: BaseException) -> str:
    """'config key 'x': reason' from a Hydra/OmegaConf error (or its first line)."""
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

    for err in _chain(e):
        if isinstance(err, OmegaConfBaseException) and getattr(err, "full_key", None):
            key = err.full_key
            msg = str(getattr(err, "msg", "") or err).strip().splitlines()[0]
            if isinstance(err, ConfigKeyError | ConfigAttributeError) and "not in" in msg:
                known = _known_keys(err)
                close = difflib.get_close_matches(key.split(".")[-1], known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                return f"config key '{key}': unknown key{hint}; known keys: {', '.join(known)}"
            msg = re.sub(r"\s*full_key:.*$", "", msg)
            return f"config key '{key}': {msg}"
    first = str(e).strip().splitlines()
    return first[0] if first else type(e).__name__


def _chain(e: BaseException | None):
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def _known_keys(err: Any) -> list[str]:
    obj = getattr(err, "object_type", None)
    fields = getattr(obj, "__dataclass_fields__", None)
    return sorted(fields) if fields else []


def precheck(config_name: str, args: list[str], validate: Callable[[Any], Any]) -> str | None:
    """Compose conf/<config_name>.yaml with the command-line overrides and run `validate` on it;
    the first problem as one line, or None when the config is good."""
    if any(a.startswith("-") for a in args):
        return None
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from common.config import ConfigError

    overrides = [a for a in args if not a.startswith(_HYDRA_PREFIXES)]
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=overrides)
        validate(cfg)
    except ConfigError as e:
        return str(e)
    except (HydraException, OmegaConfBaseException) as e:
        return one_line(e)
    return None


def exit_on_bad_config(config_name: str, validate: Callable[[Any], Any]) -> None:
    msg = precheck(config_name, sys.argv[1:], validate)
    if msg:
        print(f"error: {msg}", file=sys.stderr)
        sys.exit(2)
