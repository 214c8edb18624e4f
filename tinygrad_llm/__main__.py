"""``python -m tinygrad_llm``: the command line of lesson 07 onwards (see ``tinygrad_llm.cli``)."""

from .cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
