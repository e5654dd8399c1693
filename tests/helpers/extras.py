"""``python extras.py WORD``: exit 1 when WORD names extras (``".[a,b]"``) that pyproject.toml lacks."""

import re
import sys
from pathlib import Path

import tomllib

declared = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
named = re.fullmatch(r"\.\[(.*)\]", sys.argv[1])
missing = set(named.group(1).split(",")) - set(declared["optional-dependencies"]) if named else set()
sys.exit(f"pip install names extras that pyproject.toml lacks: {sorted(missing)}" if missing else 0)
