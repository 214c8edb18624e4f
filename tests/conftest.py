"""Shared test setup: test modules import the case table as ``from op_cases import ...``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
