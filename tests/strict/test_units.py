"""The strict layer's pure parts: DynamoDB's size and number rules, IAM matching and
conditions, template resolution, request mapping, the least-privilege report."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import tempfile
import textwrap
import unittest
from pathlib import Path

from strict import cfn, least_privilege, limits, mapping
from strict.errors import Failure
from strict.policy import Access, arn_match, condition_holds, evaluate, glob_match
from strict.registry import STATE, function_statements


class SizesTest(unittest.TestCase):
    def test_attribute_sizes(self) -> None:
        self.assertEqual(limits.av_size({"S": "ab"}), 2)
        self.assertEqual(limits.av_size({"S": "é"}), 2)  # UTF-8 bytes
        self.assertEqual(limits.av_size({"N": "123"}), 3)  # 3 digits: 2 + 1
        self.assertEqual(limits.av_size({"N": "-0.00100"}), 2)  # one significant digit
        self.assertEqual(limits.av_size({"B": base64.b64encode(b"1234").decode()}), 4)
        self.assertEqual(limits.av_size({"BOOL": True}), 1)
        self.assertEqual(limits.av_size({"NULL": True}), 1)
        self.assertEqual(limits.av_size({"L": [{"S": "a"}]}), 5)  # 3 + (1 + 1)
        self.assertEqual(limits.av_size({"M": {"k": {"S": "a"}}}), 6)  # 3 + (1 + 1 + 1)
        self.assertEqual(limits.av_size({"SS": ["a", "bc"]}), 3)
        self.assertEqual(limits.item_size({"pk": {"S": "a"}, "n": {"N": "1"}}), 3 + 3)

    def test_numbers(self) -> None:
        limits.check_number("9.9999999999999999999999999999999999999E+125")
        limits.check_number("-1E-130")
        limits.check_number("0")
        limits.check_number("1" * 38)
        for bad in ("1" * 39, "1E+126", "1E-131", "-1E+126"):
            with self.assertRaises(Failure, msg=bad):
                limits.check_number(bad)


class PolicyTest(unittest.TestCase):
    def test_wildcards(self) -> None:
        self.assertTrue(glob_match("dynamodb:Get*", "dynamodb:getitem", ignore_case=True))
        self.assertTrue(arn_match("arn:aws:iam::*:role/s3imports-*", "arn:aws:iam::111122223333:role/s3imports-x"))
        self.assertFalse(arn_match("arn:aws:iam::*:role/s3imports-*", "arn:aws:iam::111122223333:role/other"))
        self.assertTrue(arn_match("arn:aws:s3:::t1-*/*", "arn:aws:s3:::t1-src/a/b.csv"))
        self.assertFalse(arn_match("arn:aws:sqs:*:1:q", "arn:aws:sqs:us-east-1:2:q"))
        self.assertTrue(arn_match("arn:aws:secretsmanager:us-east-1:1:secret:p/*", "arn:aws:secretsmanager:us-east-1:1:secret:p/a-AbCdEf"))

    def test_conditions(self) -> None:
        ctx = {"sts:ExternalId": "x", "aws:ResourceAccount": "111122223333"}
        self.assertTrue(condition_holds("Null", "sts:ExternalId", ["false"], ctx)[0])
        self.assertFalse(condition_holds("Null", "sts:ExternalId", ["false"], {})[0])
        self.assertTrue(condition_holds("StringEquals", "aws:resourceaccount", ["1", "111122223333"], ctx)[0])
        self.assertFalse(condition_holds("StringEquals", "aws:ResourceAccount", ["1"], ctx)[0])
        self.assertTrue(condition_holds("StringNotEquals", "missing", ["a"], ctx)[0])
        self.assertTrue(condition_holds("StringEqualsIfExists", "missing", ["a"], ctx)[0])
        self.assertTrue(condition_holds("StringLike", "sts:ExternalId", ["?"], ctx)[0])
        self.assertTrue(condition_holds("Bool", "aws:SecureTransport", ["true"], {"aws:SecureTransport": "true"})[0])
        self.assertTrue(condition_holds("ForAnyValue:StringEquals", "aws:TagKeys", ["a"], {"aws:TagKeys": ["b", "a"]})[0])
        self.assertFalse(condition_holds("ForAllValues:StringEquals", "aws:TagKeys", ["a"], {"aws:TagKeys": ["b", "a"]})[0])


class TemplateTest(unittest.TestCase):
    def test_the_templates_policies_resolve(self) -> None:
        stack = STATE.register({"prefix": "tunit000001", "parameters": {"SourceBucketPattern": "tunit000001-src*",
                                                                         "CustomerAccountIds": "111122223333, 444455556666",
                                                                         "AllowSourcePostProcessing": "false"}})
        proc = stack.statements("processor")
        self.assertTrue(proc)
        everything = {a for st in proc for a in st.actions}
        self.assertNotIn("s3:PutObjectTagging", everything, "the !If statement is off")
        ses = next(st for st in proc if "ses:SendEmail" in st.actions)
        self.assertEqual(ses.resources, ["arn:aws:ses:us-east-1:123456789012:identity/s3imports@example.com",
                                         "arn:aws:ses:us-east-1:123456789012:identity/example.com"])
        sts = next(st for st in proc if "sts:AssumeRole" in st.actions)
        self.assertEqual(sts.condition["StringEquals"]["aws:ResourceAccount"], ["111122223333", "444455556666"])
        # Statement numbers do not depend on the condition.
        on = STATE.register({"prefix": "tunit000002", "parameters": {"AllowSourcePostProcessing": "true"}})
        self.assertEqual([s.index for s in on.statements("processor")][: len(proc)], [s.index for s in proc])
        denied = evaluate(proc, Access("s3:PutObjectTagging", ["arn:aws:s3:::tunit000001-src/a"], {"s3:ResourceAccount": "123456789012"}), "ProcessorFunction")
        self.assertFalse(denied.allowed)
        self.assertIn("grants s3:PutObjectTagging at all", denied.why)

    def test_intrinsics(self) -> None:
        text = textwrap.dedent("""
            Parameters:
              Mail: {Type: String}
              Ids: {Type: CommaDelimitedList, Default: ""}
            Conditions:
              Active: !Not [!Equals [!Ref Mail, ""]]
            Resources:
              Q: {Type: AWS::SQS::Queue}
            """)
        import yaml

        t = yaml.load(text, Loader=cfn.CfnLoader)  # noqa: S506
        ctx = cfn.Context(t, "tp", {"Mail": "a@b.example", "Ids": "1,2"}, {"Q": "tp-q"})
        self.assertEqual(ctx.resolve({"Fn::Select": [1, {"Fn::Split": ["@", {"Ref": "Mail"}]}]}), "b.example")
        self.assertEqual(ctx.resolve({"Fn::Sub": ["x/${D}", {"D": {"Ref": "Mail"}}]}), "x/a@b.example")
        self.assertEqual(ctx.resolve({"Fn::Sub": "${Q.Arn}|${Q.QueueName}|${AWS::StackName}|${!Literal}"}),
                         "arn:aws:sqs:us-east-1:123456789012:tp-q|tp-q|tp|${Literal}")
        self.assertEqual(ctx.resolve({"Ref": "Ids"}), ["1", "2"])
        self.assertEqual(ctx.resolve([{"Fn::If": ["Active", "yes", {"Ref": "AWS::NoValue"}]}]), ["yes"])


class MappingTest(unittest.TestCase):
    def test_partiql(self) -> None:
        a = mapping.partiql_access('SELECT * FROM "t1-ledger"."by-run" WHERE pk = ?')
        self.assertEqual((a.action, a.resource), ("dynamodb:PartiQLSelect", cfn.table_arn("t1-ledger") + "/index/by-run"))
        a = mapping.partiql_access('UPDATE "t1-ledger" SET a = 1 WHERE pk = ?')
        self.assertEqual(a.action, "dynamodb:PartiQLUpdate")

    def test_query_protocol_nesting(self) -> None:
        n = mapping._sqs_query_params([("SendMessageBatchRequestEntry.2.Id", "b"), ("SendMessageBatchRequestEntry.1.Id", "a"),
                                       ("SendMessageBatchRequestEntry.1.MessageAttribute.1.Name", "k"),
                                       ("SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue", "v")])
        self.assertEqual([e["Id"] for e in n["Entries"]], ["a", "b"])
        self.assertEqual(n["Entries"][0]["MessageAttributes"], {"k": {"StringValue": "v"}})

    def test_s3_requests(self) -> None:
        env = {"REQUEST_METHOD": "PUT", "PATH_INFO": "/t1-src/done/a b.csv", "QUERY_STRING": "",
               "HTTP_HOST": "127.0.0.1:5000", "HTTP_X_AMZ_COPY_SOURCE": "t1-src/in/a%20b.csv", "HTTP_X_AMZ_TAGGING_DIRECTIVE": "REPLACE"}
        call = mapping.s3_call(env, lambda: b"")
        self.assertEqual(call.operation, "CopyObject")
        self.assertEqual([(a.action, a.resource) for a in call.accesses],
                         [("s3:PutObject", "arn:aws:s3:::t1-src/done/a b.csv"), ("s3:GetObject", "arn:aws:s3:::t1-src/in/a b.csv")])
        env = {"REQUEST_METHOD": "PUT", "PATH_INFO": "/t1-reports", "QUERY_STRING": "x-id=CreateBucket", "HTTP_HOST": "127.0.0.1"}
        self.assertEqual(mapping.s3_call(env, lambda: b"").operation, "CreateBucket")
        env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/k", "QUERY_STRING": "uploadId=1", "HTTP_HOST": "bkt.s3.amazonaws.com"}
        call = mapping.s3_call(env, lambda: b"")
        self.assertEqual((call.bucket, call.key, call.accesses[0].action), ("bkt", "k", "s3:ListMultipartUploadParts"))


class LeastPrivilegeTest(unittest.TestCase):
    TEMPLATE = textwrap.dedent("""
        Resources:
          T: {Type: AWS::DynamoDB::Table}
          DiscoveryFunction:
            Type: AWS::Serverless::Function
            Properties:
              Policies:
                - Statement:
                    - Effect: Allow
                      Action: [dynamodb:GetItem, dynamodb:PutItem]
                      Resource: !GetAtt T.Arn
                    # Unused by tests: dynamodb:DeleteItem — only an operator's clean-up deletes
                    - Effect: Allow
                      Action: [dynamodb:DeleteItem]
                      Resource: !GetAtt T.Arn
          ProcessorFunction:
            Type: AWS::Serverless::Function
            Properties: {Policies: []}
          PreviewFunction:
            Type: AWS::Serverless::Function
            Properties: {Policies: []}
        """)

    def test_report_and_check(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            root = Path(d)
            (root / "template.yaml").write_text(self.TEMPLATE)
            (root / "op.json").write_text(json.dumps({"Groups": {"g": {"Statement": [
                {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*", "UnusedByTests": {"s3:GetObject": "manual"}}]}}}))
            usage = root / "usage"
            usage.mkdir()
            (usage / "usage-1.jsonl").write_text(json.dumps({"role": "discovery", "policy": "DiscoveryFunction", "statement": 0,
                                                            "action": "dynamodb:GetItem", "resource": "${T.Arn}", "test": "a::t"}) + "\n")
            self.assertEqual(function_statements(__import__("strict.cfn").cfn.load_template(root / "template.yaml"), "DiscoveryFunction")[1].raw["Action"], ["dynamodb:DeleteItem"])
            args = ["--usage", str(usage), "--template", str(root / "template.yaml"), "--operator-policy", str(root / "op.json"),
                    "--out", str(root / "out.md"), "--check"]
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                self.assertEqual(least_privilege.main(args), 1)
            self.assertIn("DiscoveryFunction statement 0", err.getvalue())
            self.assertIn("dynamodb:PutItem", err.getvalue())
            self.assertNotIn("DeleteItem", err.getvalue(), "justified by its comment")
            self.assertNotIn("s3:GetObject", err.getvalue(), "justified by UnusedByTests")
            table = (root / "out.md").read_text()
            self.assertIn("| 0 | dynamodb GetItem, PutItem on T | `dynamodb:GetItem` | `${T.Arn}` | `a::t` |", table)
            self.assertIn("unused — only an operator's clean-up deletes", table)
            with open(usage / "usage-1.jsonl", "a") as f:
                f.write(json.dumps({"role": "cli-tick", "policy": "DiscoveryFunction", "statement": 0,
                                    "action": "dynamodb:PutItem", "resource": "${T.Arn}", "test": "b::t"}) + "\n")
            self.assertEqual(least_privilege.main(args), 0)
            self.assertIn("`b::t (via cli-tick)`", (root / "out.md").read_text())


if __name__ == "__main__":
    unittest.main()
