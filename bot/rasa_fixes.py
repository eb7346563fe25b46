"""Four hot spots of Rasa 3.6, made cheap with the same behaviour. Importing this
module applies them (bot/agent.py does, before the model loads).

Measured on a turn through our stack (docs/benchmarks.md): together they were
close to half the CPU a conversation costs.

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
- ``DaskGraphRunner.run`` hands each graph run (one to read a message, one per
  predicted action) to dask's scheduler, after working out the minimal graph for
  its targets again. Dask's synchronous scheduler only runs each needed node once,
  after the nodes it needs; here that is done directly, depth first, with the
  minimal graph worked out once per set of targets: the same calls, the same
  results, the same errors (``GraphRunError`` for a ``RuntimeError``).
- ``DialogueStateTracker.applied_events`` replays the whole conversation each time
  it is asked, three or more times per predicted action. Its answer depends only on
  the events, which a tracker only appends to: it is kept with the tracker and
  worked out again when the events change (another list, another length or another
  last event). Callers get their own copy of the list, as before.
"""

from __future__ import annotations

from typing import Any

from jsonschema import ValidationError
from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction
from rasa.engine.exceptions import GraphRunError
from rasa.engine.graph import GraphSchema
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.shared.core.events import Event
from rasa.shared.core.trackers import DialogueStateTracker
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


def _run_in_order(self: DaskGraphRunner, inputs: dict[str, Any] | None = None,
                  targets: list[str] | None = None) -> dict[str, Any]:
    run_targets = targets if targets else self._graph_schema.target_names
    minimal: dict[tuple[str, ...], GraphSchema] = self.__dict__.setdefault("_minimal_schemas", {})
    schema = minimal.get(tuple(run_targets))
    if schema is None:
        schema = minimal[tuple(run_targets)] = self._graph_schema.minimal_graph_schema(run_targets)
    results: dict[str, Any] = {}
    for name, value in (inputs or {}).items():
        if isinstance(value, str) and value in schema.nodes:
            raise GraphRunError(f"Input value '{value}' clashes with a node name. Make sure that none of "
                                "the input names passed to the `run` method are the same as node names "
                                "in the graph schema.")
        results[name] = (name, value)

    def compute(name: str) -> Any:
        if name not in results:
            if name not in schema.nodes:
                return name  # not a node or an input: dask passes it on as it is
            needed = [compute(need) for need in schema.nodes[name].needs.values()]
            results[name] = self._instantiated_nodes[name](*needed)
        return results[name]

    try:
        return dict(compute(target) for target in run_targets)
    except RuntimeError as exc:
        raise GraphRunError("Error running runner.") from exc


_applied_with_rasa = DialogueStateTracker.applied_events


def _applied_events(self: DialogueStateTracker) -> list[Event]:
    events = self.events
    key = (id(events), len(events), id(events[-1]) if events else 0)
    kept = self.__dict__.get("_applied_events")
    if kept is None or kept[0] != key:
        kept = self.__dict__["_applied_events"] = (key, _applied_with_rasa(self))
    return list(kept[1])


RemoteAction._validate_action_result = _validate_action_result
DialogueStateTracker.applied_events = _applied_events
DaskGraphRunner.run = _run_in_order
Event.resolve_by_type = staticmethod(_resolve_by_type)
