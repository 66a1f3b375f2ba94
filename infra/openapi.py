"""Write the API's OpenAPI spec: ``.venv/bin/python infra/openapi.py`` (``--check``: exit 1
when the checked-in ``layers/common/python/mlops/openapi.json`` is out of date).

Imports every function that has an ``Api`` event in template.yaml (each with the environment
the template gives it, as localcloud does), takes its resolver's schema and merges them
(`mlops.api_spec.merged_spec`), with the InferenceFunction's routes declared from its models.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT / "layers/common/python", ROOT / "infra"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from localcloud.runtime import function_environment  # noqa: E402
from localcloud.template import load_stack  # noqa: E402
from mlops.api_spec import dumps, inference_schema, mark_apis, mark_idempotent, merged_spec  # noqa: E402
from mlops.idempotent_routes import IdempotentRequests  # noqa: E402

SPEC_PATH = ROOT / "layers/common/python/mlops/openapi.json"
COMMAND = ".venv/bin/python infra/openapi.py"
DICT_ROUTED = {"InferenceFunction"}  # no resolver: declared by mlops.api_spec.inference_schema


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _load(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def generate(template: Path = ROOT / "template.yaml") -> dict[str, Any]:
    """The spec, freshly generated from the functions' code."""
    stack = load_stack(template)
    schemas = []
    idempotent = set()  # functions whose POST routes take Idempotency-Key
    for function_id in sorted({r.function_id for r in stack.routes} - DICT_ROUTED):
        fn = stack.functions[function_id]
        env = function_environment(fn, "us-east-1", None)
        env.pop("AWS_ENDPOINT_URL", None)
        with _environment(env):
            module = _load(fn.code_dir / "app.py", f"_openapi_{function_id}")
        schemas.append(module.app.get_openapi_schema())
        if any(isinstance(getattr(m, "__self__", None), IdempotentRequests) for m in module.app._router_middlewares):
            idempotent.add(function_id)
    schemas.append(inference_schema())
    idempotent |= DICT_ROUTED  # the inference handler wraps its POSTs in IdempotentRequests.proxy
    spec = merged_spec(schemas)
    mark_apis(spec, {(r.method, r.path): r.api_id for r in stack.routes})
    mark_idempotent(spec, {(r.method, r.path) for r in stack.routes
                           if r.method == "POST" and r.function_id in idempotent})
    return spec


def main(argv: list[str]) -> int:
    text = dumps(generate())
    if "--check" in argv:
        if not SPEC_PATH.exists() or SPEC_PATH.read_text() != text:
            print(f"{SPEC_PATH.relative_to(ROOT)} is out of date: run {COMMAND}", file=sys.stderr)
            return 1
        return 0
    SPEC_PATH.write_text(text)
    print(f"wrote {SPEC_PATH.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
