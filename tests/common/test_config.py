from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from common.config import ConfigError, check_range, to_plain


def test_config_error_names_the_key():
    e = ConfigError("optim.lr", "must be > 0")
    assert str(e) == "config key 'optim.lr': must be > 0" and e.key == "optim.lr"


@pytest.mark.parametrize("value,kw,ok", [
    (0, dict(lo=0), True), (0, dict(lo=0, lo_open=True), False), (-1, dict(lo=0), False),
    (1.0, dict(lo=0, hi=1), True), (1.0, dict(lo=0, hi=1, hi_open=True), False), (None, dict(allow_none=True), True),
    (None, dict(lo=0), False),
])
def test_check_range(value, kw, ok):
    if ok:
        check_range("k.x", value, **kw)
    else:
        with pytest.raises(ConfigError, match="'k.x'"):
            check_range("k.x", value, **kw)


def test_to_plain_resolves():
    cfg = OmegaConf.create({"a": 1, "b": "${a}", "c": [1, {"d": "${a}"}]})
    assert to_plain(cfg) == {"a": 1, "b": 1, "c": [1, {"d": 1}]}
    assert to_plain({"x": 1}) == {"x": 1}
