"""The project's tools (plan, plandiff, bench, mockengine): on a Python older than the
project's, `python -m tools.<tool>` stops here with one line, before any tool imports what it
cannot run."""

import python_version

python_version.require()
