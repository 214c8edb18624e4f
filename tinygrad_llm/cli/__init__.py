"""The command line (``tinygrad-llm``); it sits on top of every other area.
"""

from .main import main, build_parser
