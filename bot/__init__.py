"""Hotline's application core.

Importing the package first applies :mod:`bot.rasa_runtime` (telemetry off, Rasa's
logs capped), so it is in force before any module here imports Rasa.
"""

from bot import rasa_runtime as _rasa_runtime  # noqa: F401
