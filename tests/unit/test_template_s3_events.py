"""S3 event sources in templates (localcloud): what is read, what is refused, and SAM's rule
that an intrinsic function in a function's environment replaces the Globals value."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from localcloud.errors import LocalCloudError, UnsupportedConstruct
from localcloud.template import BucketNotification, load_stack

ROOT = Path(__file__).resolve().parents[2]


def write_template(tmp_path: Path, events: str, globals_: str = "") -> Path:
    (tmp_path / "fn").mkdir(exist_ok=True)
    (tmp_path / "fn" / "app.py").write_text("def handler(event, context):\n    return event\n")
    path = tmp_path / "template.yaml"
    path.write_text("Transform: AWS::Serverless-2016-10-31\n" + textwrap.dedent(globals_) + textwrap.dedent("""
        Resources:
          Drop:
            Type: AWS::S3::Bucket
          Table:
            Type: AWS::DynamoDB::Table
            Properties:
              AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
              KeySchema: [{AttributeName: pk, KeyType: HASH}]
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: fn
              Handler: app.handler
              Runtime: python3.11
              Environment: {Variables: {BUCKET: !Sub "${AWS::StackName}-named"}}
              Events:
    """) + textwrap.indent(textwrap.dedent(events), " " * 8))
    return path


def test_the_product_loader_listens_to_incoming_files() -> None:
    stack = load_stack(ROOT / "template.yaml")
    data = stack.buckets["DataBucket"].name
    assert data == "mlops-data-123456789012-us-east-1"
    assert BucketNotification("DataBucket", data, "FeatureLoaderFunction", "FileDropped",
                              ("s3:ObjectCreated:*",), "incoming/", "") in stack.notifications
    # the loader names the bucket by !Sub (no Ref, no dependency cycle) and gets the same name
    assert stack.functions["FeatureLoaderFunction"].environment["DATA_BUCKET"] == data
    assert stack.functions["FeatureIngestFunction"].environment["DATA_BUCKET"] == data


def test_s3_events_with_filters(tmp_path: Path) -> None:
    stack = load_stack(write_template(tmp_path, """
        Csv:
          Type: S3
          Properties:
            Bucket: !Ref Drop
            Events: [s3:ObjectCreated:Put, s3:ObjectCreated:CompleteMultipartUpload]
            Filter: {S3Key: {Rules: [{Name: prefix, Value: in/}, {Name: Suffix, Value: .csv}]}}
        All:
          Type: S3
          Properties: {Bucket: !Ref Drop, Events: "s3:ObjectRemoved:*"}
    """), stack_name="t")
    csv, everything = stack.notifications
    assert csv == BucketNotification("Drop", "t-drop", "Fn", "Csv",
                                     ("s3:ObjectCreated:Put", "s3:ObjectCreated:CompleteMultipartUpload"), "in/", ".csv")
    assert (everything.events, everything.prefix, everything.suffix) == (("s3:ObjectRemoved:*",), "", "")


@pytest.mark.parametrize(("events", "error", "message"), [
    ("""
    E:
      Type: S3
      Properties: {Bucket: some-other-bucket, Events: s3:ObjectCreated:*}
    """, LocalCloudError, r"Fn.Events.E: an S3 event needs Bucket: !Ref <an AWS::S3::Bucket of this template>"),
    ("""
    E:
      Type: S3
      Properties: {Bucket: !Ref Table, Events: s3:ObjectCreated:*}
    """, LocalCloudError, "an S3 event needs Bucket"),
    ("""
    E:
      Type: S3
      Properties: {Bucket: !Ref Drop}
    """, LocalCloudError, "an S3 event needs Events"),
    ("""
    E:
      Type: S3
      Properties: {Bucket: !Ref Drop, Events: s3:ObjectCreated:*, Filter: {S3Key: {Rules: [{Name: middle, Value: x}]}}}
    """, LocalCloudError, "S3Key rules are"),
    ("""
    E:
      Type: S3
      Properties: {Bucket: !Ref Drop, Events: s3:ObjectCreated:*, Filter: {Tags: {}}}
    """, UnsupportedConstruct, "Fn.Events.E: localcloud cannot emulate the S3 event filter Tags"),
])
def test_bad_s3_events_name_the_event(tmp_path: Path, events: str, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        load_stack(write_template(tmp_path, events))


def test_an_intrinsic_in_the_function_replaces_the_globals_value(tmp_path: Path) -> None:
    path = write_template(tmp_path, """
        E:
          Type: S3
          Properties: {Bucket: !Ref Drop, Events: s3:ObjectCreated:*}
    """, globals_="""
        Globals:
          Function:
            Environment: {Variables: {BUCKET: !Ref Drop, TABLE: !Ref Table}}
    """)
    env = load_stack(path, stack_name="t").functions["Fn"].environment
    assert env == {"BUCKET": "t-named", "TABLE": "t-Table"}  # replaced, not merged with the Ref
