"""`localcloud`: the SAM CLI's local verbs, plus what SAM lacks, with no Docker and no network.

    localcloud invoke FUNCTION [--event FILE|-] [--env-vars FILE]
    localcloud start-api [--host 127.0.0.1] [--port 3000]
    localcloud start-lambda [--host 127.0.0.1] [--port 3001]
    localcloud execute STATE_MACHINE [--input JSON|FILE] [--real-time]
    localcloud schedule --advance 7d
    localcloud start                       # moto endpoint, API, Lambda endpoint, scheduler
    localcloud validate                    # the template and its state machines, offline

Every verb reads the template (``--template``, default ``template.yaml``), provisions its
resources into an embedded moto server and runs the functions locally. Errors are one line
and a non-zero exit; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import LocalCloudError

EXIT_ERROR = 1


def _parameter_overrides(values: Sequence[str] | None) -> dict[str, str]:
    """SAM's ``--parameter-overrides K=V K2=V2`` (also ``ParameterKey=K,ParameterValue=V``)."""
    out: dict[str, str] = {}
    for item in values or []:
        for token in item.split():
            if token.startswith("ParameterKey="):
                parts = dict(p.split("=", 1) for p in token.split(",") if "=" in p)
                key, value = parts.get("ParameterKey"), parts.get("ParameterValue")
            else:
                key, _, value = token.partition("=")
            if not key or value is None:
                raise LocalCloudError(f"--parameter-overrides: cannot read '{token}' (use Key=Value)")
            out[key] = value
    return out


def _read_json_arg(value: str | None, what: str, default: Any) -> Any:
    """A JSON document given inline, as a file path, or as '-' for standard input."""
    if value is None:
        return default
    if value == "-":
        text, source = sys.stdin.read(), "standard input"
    elif Path(value).is_file():
        text, source = Path(value).read_text(), value
    elif value.lstrip().startswith(("{", "[", '"')) or value.strip() in ("null", "true", "false"):
        text, source = value, "the argument"
    else:
        raise LocalCloudError(f"{what} {value}: no such file (and not inline JSON)")
    try:
        return json.loads(text) if text.strip() else default
    except json.JSONDecodeError as exc:
        raise LocalCloudError(f"{what} from {source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def _load(args: argparse.Namespace):
    from .template import load_stack

    return load_stack(args.template, parameter_overrides=_parameter_overrides(args.parameter_overrides),
                      region=args.region)


def _cloud(args: argparse.Namespace, stack, **kwargs):
    from .clock import VirtualClock
    from .cloud import LocalCloud
    from .runtime import load_env_vars_file

    quiet_logs = getattr(args, "quiet", False)
    return LocalCloud(
        stack,
        host=args.host,
        port=getattr(args, "moto_port", 0) or 0,
        env_vars=load_env_vars_file(getattr(args, "env_vars", None)),
        clock=VirtualClock(real_time=getattr(args, "real_time", False)),
        **({"log_sink": lambda fid, line: None} if quiet_logs else {}),
        **kwargs,
    )


# -- verbs -------------------------------------------------------------------------------
def cmd_invoke(args: argparse.Namespace) -> int:
    stack = _load(args)
    stack.function(args.function)  # fail fast, before starting anything, on a bad name
    event = _read_json_arg(args.event, "--event", {})
    with _cloud(args, stack) as cloud:
        result = cloud.runtime.invoke(args.function, json.dumps(event))
    sys.stdout.write(result.payload.decode("utf-8", "replace") + "\n")
    if result.init_failed:
        error = result.json()
        raise LocalCloudError(f"{args.function}: {error['errorType']}: {error.get('errorMessage')}")
    return 0


def _serve_until_interrupted(banner: Sequence[str], on_tick: Callable[[float], None] | None = None) -> None:
    for line in banner:
        print(line, file=sys.stderr, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    last = time.monotonic()
    try:
        while not stop.wait(1.0):
            if on_tick:
                now = time.monotonic()
                on_tick(now - last)
                last = now
    except KeyboardInterrupt:
        pass
    print("localcloud: stopping", file=sys.stderr, flush=True)


def _key_lines(cloud) -> list[str]:
    return [f"  API key {logical_id} ({cloud.stack.api_keys[logical_id].env_var}): {value}"
            for logical_id, value in cloud.api_keys.items()]


def _route_lines(stack, url: str) -> list[str]:
    """Every API of the template is served on the one port; each route names its API and the
    keys its usage plans admit."""
    def key(r) -> str:
        return f"  ({r.api_id}; key: {', '.join(sorted(stack.keys_for_api(r.api_id))) or 'none'})" \
            if r.api_key_required else f"  ({r.api_id})"
    return [f"  {r.method:6} {url}{r.path}  -> {r.function_id}{key(r)}" for r in stack.routes]


def cmd_start_api(args: argparse.Namespace) -> int:
    from .apigw import ApiServer

    stack = _load(args)
    with _cloud(args, stack) as cloud:
        with ApiServer(cloud.runtime, stack, cloud.api_keys, host=args.host, port=args.port) as api:
            _serve_until_interrupted(["localcloud: API on " + api.url, *_route_lines(stack, api.url), *_key_lines(cloud),
                                      "  Ctrl-C to stop"])
    return 0


def cmd_start_lambda(args: argparse.Namespace) -> int:
    from .lambda_endpoint import LambdaEndpoint

    stack = _load(args)
    with _cloud(args, stack) as cloud:
        with LambdaEndpoint(cloud.runtime, host=args.host, port=args.port) as endpoint:
            _serve_until_interrupted([
                f"localcloud: Lambda Invoke API on {endpoint.url}",
                *[f"  {fn.logical_id} ({fn.name})" for fn in stack.functions.values()],
                f"  boto3.client('lambda', endpoint_url='{endpoint.url}').invoke(FunctionName='{next(iter(stack.functions), 'Name')}')",
                "  Ctrl-C to stop",
            ])
    return 0


def cmd_execute(args: argparse.Namespace) -> int:
    from . import sfn

    stack = _load(args)
    stack.state_machine(args.state_machine)
    payload = _read_json_arg(args.input, "--input", {})
    with _cloud(args, stack) as cloud:
        result = sfn.execute(cloud, args.state_machine, payload, name=args.name)
    print(sfn.format_result(result))
    return 0 if result.status == "SUCCEEDED" else EXIT_ERROR


def cmd_schedule(args: argparse.Namespace) -> int:
    from . import schedule

    stack = _load(args)
    seconds = schedule.parse_duration(args.advance)
    with _cloud(args, stack) as cloud:
        firings = schedule.advance(cloud, seconds)
    print(schedule.format_firings(firings))
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    from . import schedule
    from .apigw import ApiServer
    from .lambda_endpoint import LambdaEndpoint

    stack = _load(args)
    with _cloud(args, stack) as cloud:
        with ApiServer(cloud.runtime, stack, cloud.api_keys, host=args.host, port=args.port) as api, \
                LambdaEndpoint(cloud.runtime, host=args.host, port=args.lambda_port) as endpoint:

            def tick(elapsed: float) -> None:
                for firing in schedule.advance(cloud, elapsed):
                    print(schedule.format_firings([firing]), file=sys.stderr, flush=True)

            _serve_until_interrupted([
                f"localcloud: AWS endpoint (moto) on {cloud.endpoint_url}  (aws --endpoint-url {cloud.endpoint_url} dynamodb list-tables)",
                f"localcloud: API on {api.url}",
                *_route_lines(stack, api.url),
                f"localcloud: Lambda Invoke API on {endpoint.url}",
                f"localcloud: schedules: {', '.join(s.expression + ' -> ' + s.target_id for s in stack.schedules) or 'none'}",
                "localcloud: S3 events: " + (", ".join(f"s3://{n.bucket_name}/{n.prefix}*{n.suffix} -> {n.function_id}"
                                                       for n in stack.notifications) or "none"),
                *_key_lines(cloud),
                "  Ctrl-C to stop",
            ], on_tick=tick)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from . import sfn

    stack = _load(args)
    for sm in stack.state_machines.values():
        sfn.validate_definition(sm.definition, sm.logical_id)
    print(f"{Path(args.template).name}: valid for localcloud: {len(stack.functions)} functions, "
          f"{len(stack.routes)} routes, {len(stack.tables)} tables, {len(stack.buckets)} buckets, "
          f"{len(stack.state_machines)} state machines, {len(stack.schedules)} schedules")
    for logical_id, rtype in sorted(stack.inert.items()):
        print(f"  {logical_id} ({rtype}) has no local behaviour")
    return 0


# -- parser ------------------------------------------------------------------------------
def _common(p: argparse.ArgumentParser, *, server: bool = False) -> None:
    p.add_argument("-t", "--template", default="template.yaml", help="the SAM template (default: template.yaml)")
    p.add_argument("--parameter-overrides", nargs="+", metavar="KEY=VALUE", help="template parameter values")
    p.add_argument("--env-vars", metavar="FILE", help="JSON overrides for declared environment variables, as in SAM")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    if not server:
        p.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="localcloud", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    p = sub.add_parser("invoke", help="invoke a function once (response on stdout, logs on stderr)")
    p.add_argument("function", help="logical id or name")
    p.add_argument("-e", "--event", help="event JSON file, or - for standard input (default: {})")
    _common(p)
    p.set_defaults(run=cmd_invoke)

    p = sub.add_parser("start-api", help="serve the template's API Gateway routes")
    _common(p, server=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("-p", "--port", type=int, default=3000)
    p.set_defaults(run=cmd_start_api)

    p = sub.add_parser("start-lambda", help="serve the Lambda Invoke API")
    _common(p, server=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("-p", "--port", type=int, default=3001)
    p.set_defaults(run=cmd_start_lambda)

    p = sub.add_parser("execute", help="run a state machine with its Task states running the local functions")
    p.add_argument("state_machine", help="logical id, name or ARN")
    p.add_argument("-i", "--input", help="input JSON, a file, or - for standard input (default: {})")
    p.add_argument("--name", help="execution name (default: generated)")
    p.add_argument("--real-time", action="store_true", help="really sleep in Wait states and Retry intervals")
    _common(p)
    p.set_defaults(run=cmd_execute)

    p = sub.add_parser("schedule", help="advance the virtual clock and fire the schedules that fall due")
    p.add_argument("--advance", required=True, metavar="DURATION", help="e.g. 90m, 36h, 7d, 2w")
    _common(p)
    p.set_defaults(run=cmd_schedule)

    p = sub.add_parser("start", help="the whole stack: AWS endpoint, API, Lambda endpoint, scheduler")
    _common(p, server=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("-p", "--port", type=int, default=3000, help="API port")
    p.add_argument("--lambda-port", type=int, default=3001)
    p.add_argument("--moto-port", type=int, default=4566, help="AWS endpoint port")
    p.set_defaults(run=cmd_start)

    p = sub.add_parser("validate", help="check that localcloud can run the template")
    _common(p)
    p.set_defaults(run=cmd_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except LocalCloudError as exc:
        if args.debug:
            raise
        print(f"localcloud: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        if args.debug:
            raise
        print(f"localcloud: error: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug or an environment problem: still one line without --debug
        if args.debug:
            raise
        print(f"localcloud: error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
