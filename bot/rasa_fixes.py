"""Two hot spots of Rasa 3.6, made cheap with the same behaviour. Importing this
module applies them (bot/agent.py does, before the model loads).

Measured on a turn through our stack (docs/benchmarks.md): together they were a
third of the CPU a conversation costs.

- ``RemoteAction._validate_action_result`` calls ``jsonschema.validate``, which
  checks the *schema* against the JSON-Schema meta-schema on every call before it
  checks the action's result: ~70 ms for each custom action (``action_session_start``
  runs in every conversation). Here the schema is checked once and each result is
  validated against it, raising the same error.
- ``Event.resolve_by_type`` walks every subclass of ``Event`` (a recursive
  ``__subclasses__`` scan with ``inspect.isabstract`` on each) for each event it
  reads, so reading a tracker of 60 events scans the class tree 60 times. Here the
  type names are looked up in a table of the classes known when first asked; a
  name not in it goes to Rasa's own lookup, which raises or falls back as before.
"""

from __future__ import annotations

from typing import Any

from jsonschema import ValidationError
from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.events import Event
from rasa.shared.utils.common import all_subclasses

__all__: list[str] = []

_SPEC = RemoteAction.action_response_format_spec()
_validator_class = validator_for(_SPEC)
_validator_class.check_schema(_SPEC)
_RESULT_VALIDATOR = _validator_class(_SPEC)
_validate_with_rasa = RemoteAction._validate_action_result


def _validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
    try:
        _RESULT_VALIDATOR.validate(result)
    except ValidationError:
        return _validate_with_rasa(self, result)  # Rasa's own error message
    return True


_resolve_with_rasa = Event.resolve_by_type
_event_classes: dict[str, type[Event]] = {}


def _resolve_by_type(type_name: str, default: type[Event] | None = None) -> type[Event] | None:
    if not _event_classes:
        for cls in all_subclasses(Event):
            _event_classes.setdefault(cls.type_name, cls)  # the first one wins, as in Rasa
    found = _event_classes.get(type_name)
    return found if found is not None else _resolve_with_rasa(type_name, default)


RemoteAction._validate_action_result = _validate_action_result
Event.resolve_by_type = staticmethod(_resolve_by_type)
