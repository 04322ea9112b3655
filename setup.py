"""Packages of the wheel: `app`, and `migrations/` as `rekisteri_migrations`, so `rekisteri migrate` works
from a plain (non-editable) install such as the container's. Everything else is in pyproject.toml."""

from setuptools import find_namespace_packages, setup

setup(
    packages=[*find_namespace_packages(include=["app", "app.*"]), "rekisteri_migrations", "rekisteri_migrations.versions"],
    package_dir={"rekisteri_migrations": "migrations"},
)
