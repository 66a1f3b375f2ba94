"""`sfn.validate_definition`: the definition errors AWS rejects and moto accepts are reported
before anything runs, in one line that names the state machine, the state and the problem."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from localcloud.errors import LocalCloudError
from localcloud.sfn import validate_definition
from localcloud.template import load_stack

ROOT = Path(__file__).resolve().parents[2]


def machine(**states: dict) -> dict:
    """A definition starting at the first state given."""
    return {"StartAt": next(iter(states)), "States": states}


VALID = machine(
    Start={"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f",
           "Retry": [{"ErrorEquals": ["Boom"]}, {"ErrorEquals": ["States.ALL"]}],
           "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Failed"}], "Next": "Route"},
    Route={"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "Hold"}],
           "Default": "Fanout"},
    Hold={"Type": "Wait", "Seconds": 5, "Next": "Fanout"},
    Fanout={"Type": "Parallel", "Branches": [machine(A={"Type": "Pass", "End": True})], "Next": "Each"},
    Each={"Type": "Map", "ItemProcessor": machine(B={"Type": "Succeed"}), "Next": "Done"},
    Done={"Type": "Succeed"},
    Failed={"Type": "Fail", "Error": "E"},
)


def broken(edit: Any) -> dict:
    """A copy of VALID changed by ``edit(definition)``."""
    definition = copy.deepcopy(VALID)
    edit(definition)
    return definition


def problem(definition: dict, where: str = "PipelineMachine") -> str:
    """The one-line error `validate_definition` raises for ``definition``."""
    with pytest.raises(LocalCloudError) as err:
        validate_definition(definition, where)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{where}")
    return message


def test_a_valid_definition_passes() -> None:
    validate_definition(copy.deepcopy(VALID), "PipelineMachine")


def test_every_state_machine_in_the_templates_passes() -> None:
    for template in (ROOT / "template.yaml", ROOT / "tests/fixtures/sfn_app/template.yaml"):
        for sm in load_stack(template).state_machines.values():
            validate_definition(sm.definition, sm.logical_id)


def test_dangling_next() -> None:
    message = problem(broken(lambda d: d["States"]["Hold"].update(Next="Nowhere")))
    assert "state 'Hold'" in message and "Next 'Nowhere' is not a state" in message


def test_dangling_start_at() -> None:
    message = problem(broken(lambda d: d.update(StartAt="Begin")))
    assert "StartAt 'Begin' is not a state" in message


def test_dangling_default() -> None:
    message = problem(broken(lambda d: d["States"]["Route"].update(Default="Elsewhere")))
    assert "state 'Route'" in message and "Default 'Elsewhere' is not a state" in message


def test_dangling_choice_rule_next() -> None:
    message = problem(broken(lambda d: d["States"]["Route"]["Choices"][0].update(Next="Missing")))
    assert "state 'Route'" in message and "Choices[0].Next 'Missing' is not a state" in message


def test_choice_rule_without_next() -> None:
    message = problem(broken(lambda d: d["States"]["Route"]["Choices"][0].pop("Next")))
    assert "state 'Route'" in message and "Choices[0] has no Next" in message


def test_dangling_catch_next() -> None:
    message = problem(broken(lambda d: d["States"]["Start"]["Catch"][0].update(Next="Handler")))
    assert "state 'Start'" in message and "Catch[0].Next 'Handler' is not a state" in message


def test_state_without_next_or_end() -> None:
    message = problem(broken(lambda d: d["States"]["Hold"].pop("Next")))
    assert "state 'Hold'" in message and "neither Next nor" in message


def test_state_with_both_next_and_end() -> None:
    message = problem(broken(lambda d: d["States"]["Hold"].update(End=True)))
    assert "state 'Hold'" in message and "both Next and End" in message


def test_end_false_is_not_an_end() -> None:
    message = problem(broken(lambda d: d["States"]["Hold"].update(End=False)))
    assert "state 'Hold'" in message and "End must be true" in message


def test_unknown_state_type() -> None:
    message = problem(broken(lambda d: d["States"]["Hold"].update(Type="Sleep")))
    assert "state 'Hold'" in message and "unknown state type 'Sleep'" in message


def test_missing_state_type() -> None:
    message = problem(broken(lambda d: d["States"]["Hold"].pop("Type")))
    assert "state 'Hold'" in message and "unknown state type None" in message


def test_terminal_state_with_next() -> None:
    message = problem(broken(lambda d: d["States"]["Done"].update(Next="Hold")))
    assert "state 'Done'" in message and "a Succeed state cannot have Next" in message


def test_choice_without_rules() -> None:
    message = problem(broken(lambda d: d["States"]["Route"].update(Choices=[])))
    assert "state 'Route'" in message and "non-empty Choices" in message


def test_wait_needs_exactly_one_duration() -> None:
    message = problem(broken(lambda d: d["States"]["Hold"].update(SecondsPath="$.s")))
    assert "state 'Hold'" in message and "exactly one of Seconds" in message


def test_states_all_must_be_alone_and_last() -> None:
    def edit(d: dict) -> None:
        d["States"]["Start"]["Retry"].reverse()

    message = problem(broken(edit))
    assert "state 'Start'" in message and "States.ALL must appear alone in the last entry" in message


def test_retry_on_a_state_that_cannot_retry() -> None:
    message = problem(broken(lambda d: d["States"]["Hold"].update(Retry=[{"ErrorEquals": ["X"]}])))
    assert "state 'Hold'" in message and "a Wait state cannot have Retry" in message


def test_unreachable_state() -> None:
    message = problem(broken(lambda d: d["States"].update(Orphan={"Type": "Pass", "End": True})))
    assert "state 'Orphan'" in message and "is not reachable from StartAt 'Start'" in message


def test_no_terminal_state() -> None:
    loop = machine(Ping={"Type": "Pass", "Next": "Pong"}, Pong={"Type": "Pass", "Next": "Ping"})
    message = problem(loop)
    assert "state 'Ping'" in message and "no terminal state" in message


def test_dangling_next_inside_a_parallel_branch() -> None:
    def edit(d: dict) -> None:
        d["States"]["Fanout"]["Branches"].append(machine(C={"Type": "Pass", "Next": "Done"}))

    message = problem(broken(edit))
    # "Done" exists at the top level, but a branch cannot leave its own scope.
    assert "state 'C' (in Fanout.Branches[1])" in message and "Next 'Done' is not a state" in message


def test_missing_end_inside_a_map_item_processor() -> None:
    message = problem(broken(lambda d: d["States"]["Each"].update(
        ItemProcessor=machine(Work={"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke"}))))
    assert "state 'Work' (in Each.ItemProcessor)" in message and "neither Next nor" in message


def test_unknown_type_inside_a_legacy_map_iterator() -> None:
    def edit(d: dict) -> None:
        each = d["States"]["Each"]
        each.pop("ItemProcessor")
        each["Iterator"] = machine(Step={"Type": "Loop", "End": True})

    message = problem(broken(edit))
    assert "state 'Step' (in Each.Iterator)" in message and "unknown state type 'Loop'" in message


def test_nested_scopes_are_named_from_the_top() -> None:
    inner = machine(Deep={"Type": "Pass", "Next": "Gone"})
    outer = machine(Each={"Type": "Map", "ItemProcessor": inner, "End": True})

    def edit(d: dict) -> None:
        d["States"]["Fanout"]["Branches"] = [outer]

    message = problem(broken(edit))
    assert "state 'Deep' (in Fanout.Branches[0]/Each.ItemProcessor)" in message


def test_dangling_start_at_of_a_branch() -> None:
    def edit(d: dict) -> None:
        d["States"]["Fanout"]["Branches"][0]["StartAt"] = "Z"

    message = problem(broken(edit))
    assert "(Fanout.Branches[0])" in message and "StartAt 'Z' is not a state" in message


def test_map_without_processor_and_parallel_without_branches() -> None:
    assert "a Map state needs an ItemProcessor" in problem(broken(lambda d: d["States"]["Each"].pop("ItemProcessor")))
    assert "non-empty Branches" in problem(broken(lambda d: d["States"]["Fanout"].update(Branches=[])))


def test_not_an_object() -> None:
    assert "must be a JSON object" in problem(json.loads("[]"))
    assert "'States' must be a non-empty object" in problem({"StartAt": "A", "States": {}})
