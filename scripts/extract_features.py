#!/usr/bin/env python
"""Thin wrapper: same as `roadfeat extract`."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from roadfeat.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(verb="extract"))
