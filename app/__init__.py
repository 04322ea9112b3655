"""Rekisteri: a personal-data register (henkilörekisteri) as a REST service."""

__version__ = "0.1.0"
