"""The one compiled part: the book's level loop (strategies/_book_side.c).

Everything else is declared in pyproject.toml. The extension is optional: without a C
compiler the install still succeeds and ``strategies.book`` uses its pure-Python loop.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "strategies._book_side",
            sources=["strategies/_book_side.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
