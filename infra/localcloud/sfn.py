"""Step Functions on moto's ASL interpreter, with Task states running the local functions.

`install` checks every state machine of the stack (`validate_definition`: moto only checks
syntax, AWS also rejects dangling transitions, unreachable states and workflows without an
end), creates them through the Step Functions API, and patches the interpreter so that it
behaves like AWS on a `VirtualClock`; `uninstall` puts every patch back. `execute` runs one
execution to its end and returns its status, output and full event history; `format_result`
prints that for ``localcloud execute``.

The patches (each one small, each applied by `install` and reverted by `uninstall`; moto is
pinned in requirements/dev.txt because they lean on its internals):

* **virtual waits**: ``Wait`` states (``Seconds``, ``SecondsPath``, ``Timestamp``,
  ``TimestampPath``) and ``Retry`` intervals move ``cloud.clock`` instead of sleeping, unless
  the clock runs on real time. Each interpreter environment (the execution, a Parallel branch,
  a Map iteration) keeps its own virtual "now": a branch starts at its parent's now, a wait
  moves it and the clock to the wait's end, and a finished branch hands its now back to the
  parent (the latest wins). So the waits of concurrent branches overlap as on AWS, and
  sequential waits add up. A history event is stamped with the now of the environment that
  emits it (so a branch's wait shows its own duration); a Task that waits for a child
  execution (``.sync``) or a task token catches up with the clock when it ends.
* **Timestamp waits** are computed against that virtual now in UTC (moto compares with the
  naive local ``datetime.now()``).
* **timestamps**: event timestamps, the executions' start and stop dates, ``$$.Execution.StartTime``
  and ``$$.State.EnteredTime`` come from the clock, and the two context-object times are
  ISO-8601 strings as on AWS (``2026-01-04T03:00:00.000Z``; moto puts a ``datetime`` in
  ``StartTime``, which made ``States.Format('{}', $$.Execution.StartTime)`` fail with
  "Object of type datetime is not JSON serializable").
* **startExecution.sync / .sync:2**: moto dropped the request/response normalisation of the
  ``states`` integration (``KeyError 'StateMachineArn'``); it is restored from botocore's model,
  with ``StartDate``/``StopDate`` as epoch milliseconds as AWS returns them, and the parent
  polls its child every 10 ms instead of every 0.5 s.
* **execution names**: an execution started without a name (as a ``startExecution`` task
  does) gets a UUID as on AWS; moto names it "None", so the next one collided.
* **speed**: parsed definitions and the interpreter's boto3 clients are cached (moto
  re-parses the definition and builds a client per Task on every execution: about 40 ms of a
  5-state execution, 0.1-0.3 s for a 20-state one); the stack's definitions are parsed on a
  background thread as soon as they are created.
* **quiet logs**: the interpreter logs every failed state with a full repr at ERROR level;
  the ``moto.stepfunctions`` logger is raised to CRITICAL (the failures are in the history).
"""

from __future__ import annotations

import heapq
import json
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from .errors import LocalCloudError

ROLE_ARN = "arn:aws:iam::123456789012:role/localcloud-states"
STATE_TYPES = ("Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map")
_TERMINAL_TYPES = ("Succeed", "Fail")
_WAIT_FIELDS = ("Seconds", "SecondsPath", "Timestamp", "TimestampPath")
QUIET_LOGGERS = ("moto.stepfunctions",)
SYNC_POLL_SECONDS = 0.01
_NOW_ATTR = "_localcloud_now"  # an interpreter Environment's virtual now
_SCOPE_ATTR = "_localcloud_scope_start"  # while a Parallel/Map runs: when its branches start
_SLOTS_ATTR = "_localcloud_map_slots"  # while a Map runs: when each concurrency slot is free
_OWNER_ATTR = "_localcloud_env"  # the Environment an EventHistoryContext belongs to


# =========================================================================================
# Validation
# =========================================================================================
def validate_definition(definition: dict, where: str) -> None:
    """Reject what AWS rejects and moto accepts; ``where`` names the state machine.

    Checks, recursively inside Parallel ``Branches`` and Map ``ItemProcessor``/``Iterator``:
    ``StartAt``, ``Next``, ``Default``, Choice-rule ``Next`` and ``Catch`` ``Next`` name a state
    of the same scope; every non-terminal state has exactly one of ``Next`` and ``"End": true``;
    state types are known; Choice states have rules; Wait states have one duration field; every
    state is reachable; the scope can end. Raises a one-line `LocalCloudError` naming the
    state machine, the state and the problem.
    """
    _check_scope(definition, where, scope="")


def _problem(where: str, scope: str, state: str, problem: str) -> LocalCloudError:
    inside = f" (in {scope})" if scope else ""
    return LocalCloudError(f"{where}: state '{state}'{inside}: {problem}")


def _check_scope(machine: Any, where: str, scope: str) -> None:
    """One States/StartAt scope: the top level, a Parallel branch or a Map processor."""
    label = f"{where} ({scope})" if scope else where
    if not isinstance(machine, dict):
        raise LocalCloudError(f"{label}: a state machine definition must be a JSON object")
    states = machine.get("States")
    if not isinstance(states, dict) or not states:
        raise LocalCloudError(f"{label}: 'States' must be a non-empty object")
    start = machine.get("StartAt")
    if not isinstance(start, str) or start not in states:
        raise LocalCloudError(f"{label}: StartAt '{start}' is not a state of this scope (MISSING_TRANSITION_TARGET)")
    for name, state in states.items():
        _check_state(name, state, states, where, scope)
    _check_reachable(start, states, where, scope)


def _transitions(state: dict) -> Iterator[tuple[str, Any]]:
    """Every (field, target) a state can move to."""
    if "Next" in state:
        yield "Next", state["Next"]
    if "Default" in state:
        yield "Default", state["Default"]
    for i, rule in enumerate(state.get("Choices") or []):
        if isinstance(rule, dict):
            yield f"Choices[{i}].Next", rule.get("Next")
    for i, catcher in enumerate(state.get("Catch") or []):
        if isinstance(catcher, dict):
            yield f"Catch[{i}].Next", catcher.get("Next")


def _check_state(name: str, state: Any, states: dict, where: str, scope: str) -> None:
    def bad(problem: str) -> LocalCloudError:
        return _problem(where, scope, name, problem)

    if not isinstance(state, dict):
        raise bad("a state must be a JSON object")
    stype = state.get("Type")
    if stype not in STATE_TYPES:
        raise bad(f"unknown state type {stype!r} (expected one of {', '.join(STATE_TYPES)})")
    _check_flow(state, stype, bad)
    for field_name, target in _transitions(state):
        if not isinstance(target, str) or target not in states:
            raise bad(f"{field_name} '{target}' is not a state of this scope (MISSING_TRANSITION_TARGET)")
    _check_error_handlers(state, bad)
    if stype == "Wait" and sum(key in state for key in _WAIT_FIELDS) != 1:
        raise bad(f"a Wait state needs exactly one of {', '.join(_WAIT_FIELDS)}")
    _check_children(name, state, stype, where, scope, bad)


def _check_flow(state: dict, stype: str, bad: Callable[[str], LocalCloudError]) -> None:
    """Next/End rules per state type."""
    has_next, has_end = "Next" in state, "End" in state
    if stype in _TERMINAL_TYPES or stype == "Choice":
        if has_next or has_end:
            raise bad(f"a {stype} state cannot have {'Next' if has_next else 'End'}")
        if stype == "Choice" and (not isinstance(state.get("Choices"), list) or not state["Choices"]):
            raise bad("a Choice state needs a non-empty Choices list")
        for i, rule in enumerate(state.get("Choices") or []):
            if not isinstance(rule, dict) or "Next" not in rule:
                raise bad(f"Choices[{i}] has no Next")
        return
    if has_end and state["End"] is not True:
        raise bad(f"End must be true, not {state['End']!r}")
    if has_next and has_end:
        raise bad("has both Next and End")
    if not has_next and not has_end:
        raise bad('has neither Next nor "End": true (a non-terminal state must say where to go)')


def _check_error_handlers(state: dict, bad: Callable[[str], LocalCloudError]) -> None:
    """Retry and Catch entries name their errors, with States.ALL alone and last."""
    for kind in ("Retry", "Catch"):
        entries = state.get(kind)
        if entries is None:
            continue
        if state.get("Type") not in ("Task", "Parallel", "Map"):
            raise bad(f"a {state.get('Type')} state cannot have {kind}")
        if not isinstance(entries, list):
            raise bad(f"{kind} must be a list")
        for i, entry in enumerate(entries):
            errors = entry.get("ErrorEquals") if isinstance(entry, dict) else None
            if not isinstance(errors, list) or not errors:
                raise bad(f"{kind}[{i}] needs a non-empty ErrorEquals list")
            if "States.ALL" in errors and (len(errors) > 1 or i != len(entries) - 1):
                raise bad(f"{kind}[{i}]: States.ALL must appear alone in the last entry")


def _check_children(name: str, state: dict, stype: str, where: str, scope: str,
                    bad: Callable[[str], LocalCloudError]) -> None:
    """Recurse into Parallel branches and Map processors."""
    prefix = f"{scope}/{name}" if scope else name
    if stype == "Parallel":
        branches = state.get("Branches")
        if not isinstance(branches, list) or not branches:
            raise bad("a Parallel state needs a non-empty Branches list")
        for i, branch in enumerate(branches):
            _check_scope(branch, where, f"{prefix}.Branches[{i}]")
    elif stype == "Map":
        key = "ItemProcessor" if "ItemProcessor" in state else "Iterator"
        if key not in state:
            raise bad("a Map state needs an ItemProcessor (or Iterator)")
        _check_scope(state[key], where, f"{prefix}.{key}")


def _check_reachable(start: str, states: dict, where: str, scope: str) -> None:
    seen, todo = {start}, [start]
    while todo:
        for _, target in _transitions(states[todo.pop()]):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    for name in states:
        if name not in seen:
            raise _problem(where, scope, name, f"is not reachable from StartAt '{start}' (MISSING_TRANSITION_TARGET)")
    if not any(states[name].get("Type") in _TERMINAL_TYPES or states[name].get("End") is True for name in seen):
        raise _problem(where, scope, start, "the workflow has no terminal state (MISSING_END_STATE)")


# =========================================================================================
# Patching moto's interpreter
# =========================================================================================
class _Patches:
    """Attribute replacements that can be undone exactly (class-level descriptors included)."""

    _MISSING = object()

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []

    def set(self, owner: Any, name: str, value: Any) -> None:
        """Replace ``owner.name`` with ``value``, remembering what was there (or that nothing was)."""
        original = vars(owner).get(name, self._MISSING) if isinstance(owner, type) else getattr(owner, name)
        self._saved.append((owner, name, original))
        setattr(owner, name, value)

    def restore(self) -> None:
        """Put back every replaced attribute, newest first."""
        while self._saved:
            owner, name, original = self._saved.pop()
            if original is self._MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


_patches = _Patches()
_clock: Any = None  # the installed cloud's VirtualClock
_saved_log_levels: dict[str, int] = {}
_local = threading.local()  # the environment whose Retry is sleeping
_advance_lock = threading.Lock()
_clients: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()  # cloud -> client


def aws_timestamp(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and ``Z``, as AWS writes context-object times."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _env_now(env: Any) -> datetime:
    """The virtual now of an interpreter environment (the clock's now on real time or if it has none)."""
    if _clock.real_time:
        return _clock.now()
    return getattr(env, _NOW_ATTR, None) or _clock.now()


def _virtual_sleep(env: Any, seconds: float) -> None:
    """Wait ``seconds`` on the environment's timeline, moving the clock to the wait's end."""
    if seconds <= 0:
        return
    if _clock.real_time:
        _clock.sleep(seconds)
        return
    end = _env_now(env) + timedelta(seconds=seconds)
    setattr(env, _NOW_ATTR, end)
    with _advance_lock:  # concurrent branches: move the clock to the latest end, not the sum
        lag = (end - _clock.now()).total_seconds()
        if lag > 0:
            _clock.advance(lag)


def _real_wait(env: Any, seconds: float) -> None:
    """Sleep for real until ``seconds`` have passed or the execution stops (StopExecution wakes
    it). moto's own loop rounds the waited time down to whole seconds and so waits a
    fractional wait twice."""
    deadline = time.monotonic() + seconds
    while env.is_running():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        env.program_state_event.wait(remaining)


def _patch_waits() -> None:
    """Wait states and Retry intervals on the virtual clock (see the module docstring)."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import Timestamp
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

    def wait_interval(self: Any, env: Any, wait_seconds: float) -> None:
        if _clock.real_time:
            _real_wait(env, wait_seconds)
        else:
            _virtual_sleep(env, wait_seconds)

    def timestamp_wait_seconds(self: Any, env: Any) -> float:
        self.string.eval(env=env)
        text = env.stack.pop()
        moment = self._from_timestamp_string(timestamp=text)
        if moment is None:
            from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
                FailureEventException,
            )

            raise FailureEventException(self._create_failure_event(env, text))
        return (moment.replace(tzinfo=timezone.utc) - _env_now(env)).total_seconds()

    original_retry = retrier_decl.RetrierDecl._eval_body

    def retry_eval_body(self: Any, env: Any) -> None:
        _local.env = env
        try:
            original_retry(self, env)
        finally:
            _local.env = None

    class _RetrierTime:
        """Stands in for the ``time`` module inside retrier_decl: only ``sleep`` is used."""

        @staticmethod
        def sleep(seconds: float) -> None:
            env = getattr(_local, "env", None)
            if env is None or _clock.real_time:
                _clock.sleep(seconds)
            else:
                _virtual_sleep(env, seconds)

        def __getattr__(self, name: str) -> Any:
            return getattr(time, name)

    _patches.set(WaitFunction, "_wait_interval", wait_interval)
    _patches.set(Timestamp, "_get_wait_seconds", timestamp_wait_seconds)
    _patches.set(retrier_decl.RetrierDecl, "_eval_body", retry_eval_body)
    _patches.set(retrier_decl, "time", _RetrierTime())


def _patch_timelines() -> None:
    """Give each interpreter environment its own virtual now, inherited and joined."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        StateTaskServiceCallback,
    )
    from moto.stepfunctions.parser.asl.eval.environment import Environment

    original_pattern = StateTaskServiceCallback._eval_integration_pattern
    original_init = Environment.__init__
    original_frame = Environment.as_inner_frame_of.__func__
    original_close = Environment.close_frame
    original_delete = Environment.delete_frame

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        setattr(self, _NOW_ATTR, _clock.now())
        setattr(self.event_history_context, _OWNER_ATTR, self)  # events are stamped with its now

    def as_inner_frame_of(cls: type, env: Any, *args: Any, **kwargs: Any) -> Any:
        frame = original_frame(cls, env, *args, **kwargs)
        # Branches and Map workers of one state all start when the state did, even when a
        # sibling (whose waits took no real time) already finished and joined the parent.
        start = getattr(env, _SCOPE_ATTR, None)
        setattr(frame, _NOW_ATTR, start if start is not None else _env_now(env))
        return frame

    def scoped(original: Callable[..., None]) -> Callable[..., None]:
        def eval_body(self: Any, env: Any, *args: Any, **kwargs: Any) -> None:
            start = _env_now(env)
            setattr(env, _SCOPE_ATTR, start)
            eval_input = env.stack[-1] if env.stack else None
            items = getattr(eval_input, "input_items", None)
            if items is not None:  # a Map: one slot per concurrent iteration, all free at the start
                limit = getattr(eval_input, "max_concurrency", 0) or len(items)
                setattr(env, _SLOTS_ATTR, [start] * max(1, min(limit, len(items))))
            try:
                original(self, env, *args, **kwargs)
            finally:
                setattr(env, _SCOPE_ATTR, None)
                setattr(env, _SLOTS_ATTR, None)
        return eval_body

    def slotted_job(original: Callable[..., None]) -> Callable[..., None]:
        """A Map iteration starts when a slot is free on the virtual timeline, whichever
        worker thread happens to run it (waits take no real time, so threads finish in any
        order). Exact for unlimited and for MaxConcurrency 1; in between, a slot is given back
        when its iteration finishes in real time."""
        def eval_job(self: Any, env: Any, job: Any) -> None:
            slots = getattr(self._env, _SLOTS_ATTR, None)
            if slots is None or _clock.real_time:
                return original(self, env, job)
            with _advance_lock:
                setattr(env, _NOW_ATTR, heapq.heappop(slots) if slots else _env_now(env))
            try:
                original(self, env, job)
            finally:
                with _advance_lock:
                    heapq.heappush(slots, _env_now(env))
        return eval_job

    def joined(original: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
        def close(self: Any, frame: Any) -> None:
            original(self, frame)
            with _advance_lock:  # Map workers close their frames from their own threads
                setattr(self, _NOW_ATTR, max(_env_now(self), _env_now(frame)))
        return close

    def integration_pattern(self: Any, env: Any, *args: Any, **kwargs: Any) -> None:
        try:
            original_pattern(self, env, *args, **kwargs)
        finally:  # the task waited for a child execution or a token: time passed outside
            with _advance_lock:
                setattr(env, _NOW_ATTR, max(_env_now(env), _clock.now()))

    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
        DistributedIterationComponent,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.inline_iteration_component import (
        InlineIterationComponent,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branches_decl import BranchesDecl

    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.iteration_worker import IterationWorker

    for owner in (BranchesDecl, InlineIterationComponent, DistributedIterationComponent):
        _patches.set(owner, "_eval_body", scoped(owner.__dict__["_eval_body"]))
    _patches.set(IterationWorker, "_eval_job", slotted_job(IterationWorker.__dict__["_eval_job"]))
    _patches.set(Environment, "__init__", init)
    _patches.set(Environment, "as_inner_frame_of", classmethod(as_inner_frame_of))
    _patches.set(StateTaskServiceCallback, "_eval_integration_pattern", integration_pattern)
    _patches.set(Environment, "close_frame", joined(original_close))
    _patches.set(Environment, "delete_frame", joined(original_delete))


def _patch_timestamps() -> None:
    """Clock-based, AWS-formatted times in events, executions and the context object."""
    from moto.stepfunctions.parser.asl.component.state.state import CommonStateField
    from moto.stepfunctions.parser.asl.eval.evaluation_details import ExecutionDetails
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution

    original_start = Execution.start
    original_reflect = BaseExecutionWorkerCommunication._reflect_execution_status
    original_state_input = CommonStateField._eval_state_input
    original_add_event = EventManager.add_event

    def start(self: Any) -> None:
        self.start_date = _clock.now()
        original_start(self)

    def start_details(self: Any) -> Any:
        return ExecutionDetails(arn=self.exec_arn, name=self.name, role_arn=self.role_arn,
                                inpt=self.input_data, start_time=aws_timestamp(self.start_date))

    def add_event(self: Any, context: Any, event_type: Any, event_details: Any = None,
                  timestamp: Any = None, update_source_event_id: bool = True) -> int:
        if timestamp is None:
            owner = getattr(context, _OWNER_ATTR, None)
            timestamp = _env_now(owner) if owner is not None else _clock.now()
        return original_add_event(self, context, event_type, event_details, timestamp, update_source_event_id)

    def reflect(self: Any) -> None:
        original_reflect(self)
        self.execution.stop_date = _clock.now()

    def state_input(self: Any, env: Any) -> None:
        state_data = env.states.context_object.context_object_data.get("State")
        if state_data is not None:
            state_data["EnteredTime"] = aws_timestamp(_env_now(env))
        original_state_input(self, env)

    _patches.set(EventManager, "_get_current_timestamp", staticmethod(lambda: _clock.now()))
    _patches.set(EventManager, "add_event", add_event)
    _patches.set(Execution, "start", start)
    _patches.set(Execution, "get_start_execution_details", start_details)
    _patches.set(BaseExecutionWorkerCommunication, "_reflect_execution_status", reflect)
    _patches.set(CommonStateField, "_eval_state_input", state_input)


def _epoch_millis(value: Any) -> Any:
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else value


def _patch_sfn_integration() -> None:
    """Restore the request/response shapes of ``arn:aws:states:::states:startExecution[.sync[:2]]``."""
    import botocore.session
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback_module,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
        StateTaskServiceSfn,
    )

    model = botocore.session.get_session().get_service_model("stepfunctions")
    original_parameters = StateTaskServiceSfn._normalise_parameters

    def operation(self: Any, action: str | None) -> Any:
        snake = self._get_boto_service_action(service_action_name=action)
        return model.operation_model("".join(part.capitalize() for part in snake.split("_")))

    def normalise_parameters(self: Any, parameters: dict, boto_service_name: str | None = None,
                             service_action_name: str | None = None) -> None:
        original_parameters(self, parameters, boto_service_name, service_action_name)
        self._to_boto_request(parameters, operation(self, service_action_name).input_shape)

    def normalise_response(self: Any, response: Any, boto_service_name: str | None = None,
                           service_action_name: str | None = None) -> None:
        self._from_boto_response(response, operation(self, service_action_name).output_shape)
        if isinstance(response, dict):
            for key in ("StartDate", "StopDate"):
                if key in response:
                    response[key] = _epoch_millis(response[key])

    _patches.set(StateTaskServiceSfn, "_normalise_parameters", normalise_parameters)
    _patches.set(StateTaskServiceSfn, "_normalise_response", normalise_response)
    _patches.set(callback_module, "_DELAY_SECONDS_SYNC_CONDITION_CHECK", SYNC_POLL_SECONDS)


def _patch_execution_names() -> None:
    """An execution started without a name gets a UUID, as on AWS (moto names it "None", so the
    next unnamed start either collides or, with the same input, silently returns the old one)."""
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend.start_execution

    def start_execution(self: Any, state_machine_arn: str, name: str | None = None,
                        execution_input: Any = None, trace_header: Any = None) -> Any:
        return original(self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header)

    _patches.set(StepFunctionsParserBackend, "start_execution", start_execution)


def _patch_speed() -> None:
    """Two costs moto pays on every execution, about 40 ms of a 5-state one: parsing the
    definition again (ANTLR, 10-30 ms) and creating a boto3 client for every Task (about 10 ms
    each). Parsed programs are cached per definition text (their components are immutable;
    all execution state lives in the interpreter's Environment) and clients per
    service/region/endpoint/credentials (boto3 clients are thread-safe)."""
    import boto3
    from moto.stepfunctions.parser.asl.utils import boto_client
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    def entrypoint(self: Any) -> Any:
        return _program(self._evaluation_details.state_machine_details.definition)

    class _CachingBoto3:
        """Stands in for ``boto3`` inside moto's boto_client module: only ``client`` is used."""

        def __init__(self) -> None:
            self._clients: dict[tuple, Any] = {}
            self._lock = threading.Lock()

        def client(self, **kwargs: Any) -> Any:
            key = tuple(sorted((k, v) for k, v in kwargs.items() if k != "config"))
            with self._lock:
                if key not in self._clients:
                    self._clients[key] = boto3.client(**kwargs)
                return self._clients[key]

        def __getattr__(self, name: str) -> Any:
            return getattr(boto3, name)

    _patches.set(ExecutionWorker, "_get_evaluation_entrypoint", entrypoint)
    _patches.set(boto_client, "boto3", _CachingBoto3())


#: Parsed programs by definition text, for the whole process (their components are immutable).
_programs: dict[str, Future] = {}
_programs_lock = threading.Lock()


def _program(text: str) -> Any:
    """The parsed program of a definition: parsed once (ANTLR: 0.1-0.3 s for a 20-state
    machine), by the first caller; others wait for that parse. A failed parse is not kept."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    with _programs_lock:
        future = _programs.get(text)
        mine = future is None
        if mine:
            future = _programs[text] = Future()
    if mine:
        try:
            future.set_result(AmazonStateLanguageParser.parse(text)[0])
        except BaseException as exc:
            with _programs_lock:
                _programs.pop(text, None)
            future.set_exception(exc)
    return future.result()


def _parse_ahead(texts: list[str]) -> None:
    """Parse the stack's definitions on a background thread, so that the first execution of
    each does not wait for ANTLR (AWS checks and compiles a definition when it is created)."""
    def work() -> None:
        for text in texts:
            try:
                _program(text)
            except Exception:  # an execution of it will report the error
                pass

    threading.Thread(target=work, name="localcloud-sfn-parse", daemon=True).start()


def _quiet_logs() -> None:
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        _saved_log_levels[name] = logger.level
        logger.setLevel(logging.CRITICAL)


def _restore_logs() -> None:
    for name, level in _saved_log_levels.items():
        logging.getLogger(name).setLevel(level)
    _saved_log_levels.clear()


# =========================================================================================
# install / uninstall
# =========================================================================================
def install(cloud: Any) -> None:
    """Validate and create the stack's state machines, and patch the interpreter onto ``cloud.clock``.

    Raises `LocalCloudError` (before anything is patched or created) when a definition is
    invalid. Only one cloud is installed at a time, as only one `LocalCloud` runs per process.
    """
    global _clock
    for sm in cloud.stack.state_machines.values():
        validate_definition(sm.definition, sm.logical_id)
    if _clock is not None:
        raise LocalCloudError("the Step Functions runner is already installed for another LocalCloud")
    _clock = cloud.clock
    try:
        _patch_waits()
        _patch_timelines()
        _patch_timestamps()
        _patch_sfn_integration()
        _patch_execution_names()
        _patch_speed()
        _quiet_logs()
        client = cloud.client("stepfunctions")
        texts = [json.dumps(sm.definition) for sm in cloud.stack.state_machines.values()]
        for sm, text in zip(cloud.stack.state_machines.values(), texts):
            client.create_state_machine(name=sm.name, definition=text, roleArn=ROLE_ARN)
        _parse_ahead(texts)
    except BaseException:
        uninstall(cloud)
        raise


def uninstall(cloud: Any) -> None:
    """Undo every patch `install` applied (safe to call when nothing is installed)."""
    global _clock
    if _clock is not None and _clock is not getattr(cloud, "clock", None):
        return  # installed by another cloud: not ours to undo
    _patches.restore()
    _restore_logs()
    _clock = None


# =========================================================================================
# Executions
# =========================================================================================
@dataclass
class ExecutionResult:
    """One finished execution: what `execute` returns and `format_result` prints."""

    execution_arn: str
    status: str  # SUCCEEDED, FAILED, TIMED_OUT or ABORTED
    output: Any  # the parsed output JSON, or None
    error: str | None
    cause: str | None
    events: list[dict] = field(default_factory=list)  # get_execution_history events, in order
    wall_seconds: float = 0.0
    virtual_seconds: float = 0.0  # how far cloud.clock moved during the execution

    @property
    def succeeded(self) -> bool:
        """True when the execution ended SUCCEEDED."""
        return self.status == "SUCCEEDED"


def execute(cloud: Any, state_machine: str, input: object = None, *, name: str | None = None,
            timeout: float = 300) -> ExecutionResult:
    """Run one execution of ``state_machine`` (logical id, name or ARN) to its end.

    ``input`` is any JSON-serialisable value (default ``{}``); ``name`` defaults to a fresh
    unique name (moto names unnamed executions "None", so a second one would collide).
    ``timeout`` is in real seconds: past it the execution is stopped and `LocalCloudError`
    raised. Waits and retries inside run on ``cloud.clock``; this function polls in real time.
    """
    sm = cloud.stack.state_machine(state_machine)
    client = _client(cloud)
    try:
        payload = json.dumps({} if input is None else input)
    except (TypeError, ValueError) as exc:
        raise LocalCloudError(f"{sm.logical_id}: the execution input is not JSON-serialisable: {exc}") from None
    virtual_start, wall_start = cloud.clock.now(), time.perf_counter()
    arn = client.start_execution(stateMachineArn=sm.arn, name=name or f"localcloud-{uuid.uuid4().hex}",
                                 input=payload)["executionArn"]
    described = _wait_for_end(client, arn, timeout, sm.logical_id)
    events = _history(client, arn)
    output = described.get("output")
    return ExecutionResult(
        execution_arn=arn,
        status=described["status"],
        output=json.loads(output) if output is not None else None,
        error=described.get("error"),
        cause=described.get("cause"),
        events=events,
        wall_seconds=time.perf_counter() - wall_start,
        virtual_seconds=(cloud.clock.now() - virtual_start).total_seconds(),
    )


def _client(cloud: Any) -> Any:
    """One Step Functions client per cloud (creating a boto3 client costs about 10 ms)."""
    client = _clients.get(cloud)
    if client is None:
        client = _clients[cloud] = cloud.client("stepfunctions")
    return client


def _wait_for_end(client: Any, arn: str, timeout: float, label: str) -> dict:
    """Poll describe_execution (real time, 1 ms growing to 20 ms) until it is not RUNNING."""
    deadline, delay = time.monotonic() + timeout, 0.001
    while True:
        described = client.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return described
        if time.monotonic() > deadline:
            client.stop_execution(executionArn=arn, error="localcloud.Timeout",
                                  cause=f"still running after {timeout:g} s")
            # The interpreter's thread ends the execution when it next looks (moto marks it
            # ABORTED there, not in StopExecution): wait for that, so "stopped" is true on return.
            settle = time.monotonic() + 10
            while client.describe_execution(executionArn=arn)["status"] == "RUNNING" and time.monotonic() < settle:
                time.sleep(0.01)
            raise LocalCloudError(f"{label}: execution {arn} still running after {timeout:g} s; stopped it")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.02)


def _history(client: Any, arn: str) -> list[dict]:
    """Every history event of the execution, following nextToken."""
    events: list[dict] = []
    kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
    while True:
        page = client.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


# =========================================================================================
# Output for the CLI
# =========================================================================================
_DETAIL_FIELDS = ("error", "cause", "resourceType", "resource", "index", "name", "input", "output")


def _event_details(event: dict) -> dict:
    return next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})


def _state_names(events: list[dict]) -> dict[int, str]:
    """Event id -> the state it belongs to: its own name on Entered/Exited events, the open
    Map or Parallel state on their progress events, else the state of its predecessor."""
    names: dict[int, str] = {}
    open_containers: list[tuple[str, str]] = []  # (Map|Parallel, state name)
    for event in events:
        etype, details = event["type"], _event_details(event)
        kind = next((k for k in ("Map", "Parallel") if etype.startswith(k)), None)
        own = details.get("name") if etype.endswith(("StateEntered", "StateExited")) else None
        if kind and etype.endswith("StateEntered"):
            open_containers.append((kind, own))
        elif kind and etype.endswith("StateExited") and (kind, own) in open_containers:
            open_containers.remove((kind, own))
        elif kind and not own:
            own = next((n for k, n in reversed(open_containers) if k == kind), None)
        names[event["id"]] = own or names.get(event.get("previousEventId", 0), "")
    return names


def _short(value: Any, limit: int = 100) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _event_line(event: dict, state: str, start: datetime | None) -> str:
    stamp = event["timestamp"]
    offset = f"+{(stamp - start).total_seconds():.3f}s" if start else ""
    details = _event_details(event)
    parts = [f"{key}={_short(details[key])}" for key in _DETAIL_FIELDS
             if key in details and key != "name" and details[key] not in (None, "")]
    return (f"{event['id']:>4}  {aws_timestamp(stamp)}  {offset:>14}  {event['type']:<28} "
            f"{state:<20} {' '.join(parts)}").rstrip()


def _human_seconds(seconds: float) -> str:
    """``97731804.5`` -> ``97731804.5 s (1131d 3h 3m 24s)``; short spans stay plain."""
    text = f"{seconds:.3f}".rstrip("0").rstrip(".") + " s"
    if seconds < 60:
        return text
    rest, parts = int(seconds), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size or parts:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return f"{text} ({' '.join(p for p in parts if not p.startswith('0'))})"


def format_result(result: ExecutionResult) -> str:
    """The human report of ``localcloud execute``: status, output or error, then every event."""
    lines = [f"{result.status}  {result.execution_arn}",
             f"wall {result.wall_seconds * 1000:.1f} ms, virtual clock moved {_human_seconds(result.virtual_seconds)}"]
    if result.output is not None:
        lines += ["output:", json.dumps(result.output, indent=2, sort_keys=True, default=str)]
    if result.error or result.cause:
        lines += [f"error: {result.error}", f"cause: {_short(result.cause, 400)}"]
    lines.append(f"events ({len(result.events)}):")
    names = _state_names(result.events)
    start = result.events[0]["timestamp"] if result.events else None
    lines += [_event_line(event, names[event["id"]], start) for event in result.events]
    return "\n".join(lines)
