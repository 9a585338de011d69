"""The ``mm-litellm`` command line (one module per verb; ``main.py`` wires them)."""
