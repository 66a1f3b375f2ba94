"""The real SAM CLI on the project's files, and every function under `sam local invoke` (Docker)
compared with `localcloud invoke` on the same sample event.

Functions are discovered from template.yaml (so a new function is covered without editing this
file) and events from events/<FunctionLogicalId>[-variant].json; a function without a sample
event fails. Each invoke starts from freshly provisioned resources on both sides: localcloud
provisions its own moto per `localcloud invoke`, and the moto container that SAM's function
reaches is reset and provisioned from the template before each `sam local invoke`.
`make sam-check` runs the cases on two pytest-xdist workers: each has its own moto container
and network; `sam build` and the moto image are made once per run (samkit.exclusive).
The responses must agree: same statusCode, same body (JSON bodies parsed), same everything else,
up to the entries of samkit.NORMALISED (the one documented place for legitimate differences).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import samkit
from samkit import reported

from localcloud.template import load_stack

pytestmark = [pytest.mark.sam, pytest.mark.timeout(3600)]

FUNCTION_IDS = sorted(load_stack(samkit.TEMPLATE, region=samkit.REGION).functions)
CASES, ORPHAN_EVENTS = samkit.discover(FUNCTION_IDS)
EVENT_CASES = [c for c in CASES if c.event is not None]


def test_sam_validate_lint(sam: samkit.Sam) -> None:
    """`sam validate --lint` reports nothing (cfn-lint's E2533 is ignored in the template's Metadata)."""
    with reported("sam validate"):
        ran = sam.run("validate", "--lint", "--template-file", samkit.TEMPLATE, timeout=600)
    lines = [line for line in (ran.stdout + ran.stderr).splitlines() if line.strip()]
    if ran.returncode != 0 or lines != [f"{samkit.TEMPLATE} is a valid SAM Template"]:
        pytest.fail("`sam validate --lint` reported something:\n" + ran.describe(), pytrace=False)


def test_sam_build(builds: samkit.Builds) -> None:
    """`sam build` of the whole template succeeds (every function and every layer)."""
    whole = builds.whole
    if not whole.ok:
        headline = next((line for line in reversed(whole.error.splitlines()) if line.startswith("Error:")), "")
        pytest.fail(f"`sam build` of template.yaml failed. {headline}\n{whole.error}", pytrace=False)


def test_event_files_name_a_function() -> None:
    if ORPHAN_EVENTS:
        pytest.fail("sample events that name no function of template.yaml (expected "
                    f"events/<FunctionLogicalId>[-variant].json; functions: {', '.join(FUNCTION_IDS)}): "
                    + ", ".join(p.name for p in ORPHAN_EVENTS), pytrace=False)


@pytest.mark.parametrize("function_id", FUNCTION_IDS)
def test_function_has_a_sample_event(function_id: str) -> None:
    if not any(c.function_id == function_id for c in EVENT_CASES):
        pytest.fail(f"{function_id} has no sample event, so make sam-check cannot compare it: add "
                    f"events/{function_id}.json (and events/{function_id}-<variant>.json for more cases), "
                    "e.g. from `sam local generate-event`.", pytrace=False)


@pytest.mark.parametrize("function_id", FUNCTION_IDS)
def test_function_declares_endpoint_variable(function_id: str, stack) -> None:
    """Under `sam local` a function reaches the moto container only through a declared
    AWS_ENDPOINT_URL (SAM's --env-vars overrides declared variables only)."""
    if samkit.ENDPOINT_VARIABLE not in stack.functions[function_id].environment:
        pytest.fail(f"{function_id} does not declare {samkit.ENDPOINT_VARIABLE}.\n{samkit.TEMPLATE_CHANGE}",
                    pytrace=False)


@pytest.mark.parametrize("case", EVENT_CASES, ids=[c.id for c in EVENT_CASES])
def test_sam_local_invoke_matches_localcloud(case: samkit.Case, stack, sam: samkit.Sam, builds: samkit.Builds,
                                            moto: samkit.MotoServer, docker_guard: Path, scratch: Path) -> None:
    fid = case.function_id
    assert case.event is not None
    fn = stack.functions[fid]
    problem = samkit.localcloud_endpoint_problem(fn)
    if problem:
        pytest.fail(problem, pytrace=False)
    build = builds.for_function(fid)
    if not build.ok:
        pytest.fail(f"`sam build {fid}` failed, so it cannot run under sam local:\n{build.error}", pytrace=False)

    # localcloud invoke provisions its own moto in its own process: it runs while SAM's container
    # does (the two share nothing), which halves the wall time of a case.
    local_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with ThreadPoolExecutor(max_workers=1) as pool:
        local_future = pool.submit(samkit.run, [*samkit.localcloud_command(), "invoke", fid, "--event", case.event,
                                                "--template", samkit.TEMPLATE, "--region", samkit.REGION],
                                   timeout=samkit.LOCALCLOUD_TIMEOUT_S, env=local_env, what="localcloud invoke")
        with reported("moto container"):
            moto.reset_and_provision(stack)
        env_vars = samkit.env_vars_file(scratch / f"env-vars-{case.id}.json", fn, moto.container_url)
        with reported("sam local invoke"):
            sam_ran = sam.run("local", "invoke", fid, "--template", build.template, "--event", case.event,
                              "--skip-pull-image", "--docker-network", moto.network, "--env-vars", env_vars,
                              "--region", samkit.REGION, timeout=samkit.INVOKE_TIMEOUT_S,
                              docker_config=docker_guard)
        with reported("localcloud invoke"):
            local_ran = local_future.result()
    if sam_ran.returncode != 0:
        pytest.fail(f"`sam local invoke {fid}` failed:\n{sam_ran.describe()}", pytrace=False)
    if local_ran.returncode != 0:
        pytest.fail(f"`localcloud invoke {fid}` failed:\n{local_ran.describe()}", pytrace=False)

    with reported("responses"):
        sam_payload = samkit.parse_payload(sam_ran.stdout, "sam local invoke")
        local_payload = samkit.parse_payload(local_ran.stdout, "localcloud invoke")
    diffs = samkit.differences(sam_payload, local_payload)
    if diffs:
        hint = ""
        if samkit.ENDPOINT_VARIABLE not in fn.environment:
            hint = (f"\nNote: {fid} does not declare {samkit.ENDPOINT_VARIABLE}, so under sam local its AWS calls "
                    f"went to the (blocked) real endpoint instead of the moto container.\n{samkit.TEMPLATE_CHANGE}")
        pytest.fail(
            f"{fid} with {case.event.name}: sam local invoke and localcloud invoke disagree:\n  "
            + "\n  ".join(diffs)
            + f"\n--- sam local invoke ---\n{samkit.pretty(sam_payload)}"
            + f"\n--- localcloud invoke ---\n{samkit.pretty(local_payload)}"
            + f"\n--- sam stderr (tail) ---\n{sam_ran.stderr[-3000:]}"
            + f"\n--- localcloud stderr (tail) ---\n{local_ran.stderr[-3000:]}"
            + hint,
            pytrace=False)


@pytest.mark.parametrize("function_id", FUNCTION_IDS)
def test_function_size_within_lambda_limit(function_id: str, builds: samkit.Builds) -> None:
    """Every function with its layers fits Lambda's 250 MiB (unzipped), measured on `sam build`'s output."""
    build = builds.for_function(function_id)
    if not build.ok:
        pytest.fail(f"`sam build {function_id}` failed, so its size is unknown:\n{build.error}", pytrace=False)
    total, parts = samkit.function_size(build.template, function_id)
    if total >= samkit.LAMBDA_LIMIT_MIB:
        pytest.fail(f"{function_id} + layers is {total:.1f} MiB unzipped, over Lambda's "
                    f"{samkit.LAMBDA_LIMIT_MIB:.0f} MiB: " + ", ".join(f"{k} {v:.1f}" for k, v in parts.items()),
                    pytrace=False)
