"""YAML values as a user types them: ``1e-3`` is a float.

PyYAML implements YAML 1.1, whose float needs a dot (``1.0e-3``); ``1e-3`` comes back as the
string ``"1e-3"`` and a float parameter is then refused. This loader adds YAML 1.2's float
forms; everything else is ``yaml.safe_load``.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["load_yaml"]


class _Loader(yaml.SafeLoader):
    """``SafeLoader`` plus YAML 1.2 floats without a dot (``1e-3``, ``-2E+4``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(text: str) -> Any:
    """Parse ``text`` like ``yaml.safe_load``, reading ``1e-3`` as a float."""
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects
