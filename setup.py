"""The optional C extension (shieldwall.detect._native): the detector's hot path over PCRE2.

Everything else is in pyproject.toml. Without a C compiler or PCRE2's headers (Debian:
``apt-get install libpcre2-dev``) the build skips the extension with a warning and shieldwall
runs its pure-Python detector, with the same results (docs/detection.md, "Speed").
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "shieldwall.detect._native",
            ["src/shieldwall/detect/_native.c"],
            libraries=["pcre2-8"],
            extra_compile_args=["-O2", "-Wall", "-Wno-unused-function"],
            optional=True,
        )
    ]
)
