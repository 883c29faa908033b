"""Build the optional C extension ``streamlog._speedups``; pyproject.toml holds the metadata.

``optional=True``: when the extension cannot be compiled (no C compiler, no Python
headers) setuptools prints a warning and installs the pure-Python package, which
falls back to its pure functions (``streamlog.clients._partitioner.COMPILED`` is
False). See "Compiled speedups" in docs/design.md.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "streamlog._speedups",
            sources=["src/streamlog/_speedups.c"],
            optional=True,
        )
    ]
)
