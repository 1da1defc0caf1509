"""The strict server's IAM checks, driven with boto3 as the functions' and the CLI's
principals: allowed and refused requests, conditions, principals, the control API."""

from __future__ import annotations

import json
import unittest
import urllib.error
import urllib.request
from pathlib import Path

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from strict._support import Stack, server


def code(e: ClientError) -> tuple[str, int]:
    return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]


class IamTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.srv = server()

    def stack(self, **registration: object) -> Stack:
        return Stack(self.srv, self.id(), **registration)

    def test_processor_reads_a_source_object_and_the_use_is_recorded(self) -> None:
        st = self.stack()
        s3 = st.client("s3")
        s3.create_bucket(Bucket=st.name("src"))
        s3.put_object(Bucket=st.name("src"), Key="in/a.csv", Body=b"ID\n1\n")
        body = st.client("s3", "processor").get_object(Bucket=st.name("src"), Key="in/a.csv")["Body"].read()
        self.assertEqual(body, b"ID\n1\n")
        self.assertEqual(st.violations(), [])
        _, usage = self.srv.call("GET", f"/_strict/usage?prefix={st.prefix}")
        self.assertIn(
            {"role": "processor", "policy": "ProcessorFunction", "action": "s3:GetObject",
             "resource": "arn:${AWS::Partition}:s3:::${SourceBucketPattern}/*", "test": self.id()},
            [{k: u[k] for k in ("role", "policy", "action", "resource", "test")} for u in usage],
        )
        lines = [json.loads(l) for f in Path(self.srv.usage_dir).glob("usage-*.jsonl") for l in f.read_text().splitlines()]
        self.assertTrue(any(l.get("action") == "s3:GetObject" and l.get("test") == self.id() and "label" in l for l in lines))
        # A bucket outside SourceBucketPattern is not the processor's.
        s3.create_bucket(Bucket="other-" + st.prefix)
        s3.put_object(Bucket="other-" + st.prefix, Key="x", Body=b"x")
        with self.assertRaises(ClientError) as e:
            st.client("s3", "processor").get_object(Bucket="other-" + st.prefix, Key="x")
        self.assertEqual(code(e.exception), ("AccessDenied", 403))
        (v,) = st.take_violations()
        self.assertEqual((v["kind"], v["action"], v["resource"]), ("iam", "s3:GetObject", f"arn:aws:s3:::other-{st.prefix}/x"))

    def test_a_removed_grant_is_refused_with_the_missing_statement_named(self) -> None:
        st = self.stack(remove=[{"role": "processor", "action": "dynamodb:PutItem"}])
        ledger = st.name("ledger")
        ddb = st.client("dynamodb", "processor")
        with self.assertRaises(ClientError) as e:
            ddb.put_item(TableName=ledger, Item={"pk": {"S": "i"}, "sk": {"S": "FILE#a"}})
        self.assertEqual(code(e.exception), ("AccessDeniedException", 400))
        self.assertIn("dynamodb:PutItem", e.exception.response["Error"]["Message"])
        # Inside a transaction IAM checks each action, not TransactWriteItems.
        with self.assertRaises(ClientError) as e:
            ddb.transact_write_items(TransactItems=[
                {"Update": {"TableName": ledger, "Key": {"pk": {"S": "i"}, "sk": {"S": "FILE#a"}},
                            "UpdateExpression": "SET n = :n", "ExpressionAttributeValues": {":n": {"N": "1"}}}},
                {"Put": {"TableName": ledger, "Item": {"pk": {"S": "i"}, "sk": {"S": "FILE#a#1"}}}},
            ])
        self.assertEqual(code(e.exception), ("AccessDeniedException", 400))
        found = st.take_violations()
        self.assertEqual([(v["kind"], v["role"], v["operation"], v["action"]) for v in found],
                         [("iam", "processor", "PutItem", "dynamodb:PutItem"),
                          ("iam", "processor", "TransactWriteItems", "dynamodb:PutItem")])
        msg = found[1]["message"]
        for part in ("processor", "TransactWriteItems", "dynamodb:PutItem", f"table/{ledger}", "ProcessorFunction", "statement 1"):
            self.assertIn(part, msg)
        self.assertEqual(st.violations(), [], "DELETE cleared them")
        # Nothing was written.
        self.assertNotIn("Item", st.client("dynamodb").get_item(TableName=ledger, Key={"pk": {"S": "i"}, "sk": {"S": "FILE#a"}}))

    def test_secrets_are_read_only_when_tagged_as_the_policy_requires(self) -> None:
        st = self.stack()
        sm = st.client("secretsmanager")
        bound = sm.create_secret(Name=f"{st.prefix}/bound", SecretString="s",
                                 Tags=[{"Key": "s3imports:import-id", "Value": "users"},
                                       {"Key": "s3imports:secret-kind", "Value": "pgp-key"}])["Name"]
        sm.create_secret(Name=f"{st.prefix}/loose", SecretString="s")
        self.assertEqual(st.client("secretsmanager", "processor").get_secret_value(SecretId=bound)["SecretString"], "s")
        with self.assertRaises(ClientError) as e:
            st.client("secretsmanager", "processor").get_secret_value(SecretId=f"{st.prefix}/loose")
        self.assertEqual(code(e.exception), ("AccessDeniedException", 400))
        # Discovery reads access-key secrets only.
        with self.assertRaises(ClientError) as e:
            st.client("secretsmanager", "discovery").describe_secret(SecretId=bound)
        self.assertEqual(code(e.exception), ("AccessDeniedException", 400))
        found = st.take_violations()
        self.assertEqual(len(found), 2)
        self.assertIn("Null secretsmanager:ResourceTag/s3imports:import-id", found[0]["message"])
        self.assertIn("StringEquals secretsmanager:ResourceTag/s3imports:secret-kind", found[1]["message"])
        self.assertIn("'pgp-key'", found[1]["message"])

    def test_customer_roles_are_assumed_only_with_an_external_id_in_listed_accounts(self) -> None:
        st = self.stack()
        sts = st.client("sts", "processor")
        out = sts.assume_role(RoleArn="arn:aws:iam::111122223333:role/s3imports-reader", RoleSessionName="ss", ExternalId="xx")
        self.assertTrue(out["Credentials"]["AccessKeyId"].startswith("ASIA"))
        with self.assertRaises(ClientError) as e:
            sts.assume_role(RoleArn="arn:aws:iam::111122223333:role/s3imports-reader", RoleSessionName="ss")
        self.assertEqual(code(e.exception), ("AccessDenied", 403))
        with self.assertRaises(ClientError) as e:
            sts.assume_role(RoleArn="arn:aws:iam::444455556666:role/s3imports-reader", RoleSessionName="ss", ExternalId="xx")
        self.assertEqual(code(e.exception), ("AccessDenied", 403))
        found = st.take_violations()
        self.assertIn("Null sts:ExternalId", found[0]["message"])
        self.assertIn("aws:ResourceAccount", found[1]["message"])
        self.assertIn("444455556666", found[1]["message"])
        # The assumed role's keys are moto's: a customer's principal, not checked.
        s3 = st.client("s3")
        s3.create_bucket(Bucket="customer-" + st.prefix)
        s3.put_object(Bucket="customer-" + st.prefix, Key="k", Body=b"v")
        c = out["Credentials"]
        import boto3

        customer = boto3.client("s3", endpoint_url=self.srv.endpoint, region_name="us-east-1",
                                aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                                aws_session_token=c["SessionToken"])
        self.assertEqual(customer.get_object(Bucket="customer-" + st.prefix, Key="k")["Body"].read(), b"v")
        self.assertEqual(st.violations(), [])

    def test_mail_goes_out_only_from_the_sender_identity(self) -> None:
        st = self.stack()
        st.client("sesv2").create_email_identity(EmailIdentity="s3imports@example.com")
        ses = st.client("sesv2", "processor")
        msg = {"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}}
        ses.send_email(FromEmailAddress="s3imports@example.com", Destination={"ToAddresses": ["a@x.example"]}, Content=msg)
        with self.assertRaises(ClientError) as e:
            ses.send_email(FromEmailAddress="someone@else.example", Destination={"ToAddresses": ["a@x.example"]}, Content=msg)
        self.assertEqual(code(e.exception), ("AccessDeniedException", 403))
        (v,) = st.take_violations()
        self.assertIn("identity/someone@else.example or arn:aws:ses:us-east-1:123456789012:identity/else.example", v["resource"])

    def test_topics_named_by_the_pattern_take_summaries(self) -> None:
        st = self.stack()
        sns = st.client("sns")
        mine = sns.create_topic(Name=st.name("alerts"))["TopicArn"]
        other = sns.create_topic(Name="x" + st.prefix)["TopicArn"]
        st.client("sns", "processor").publish(TopicArn=mine, Message="{}")
        with self.assertRaises(ClientError) as e:
            st.client("sns", "processor").publish(TopicArn=other, Message="{}")
        self.assertEqual(code(e.exception), ("AuthorizationError", 403))
        self.assertEqual(len(st.take_violations()), 1)

    def test_cli_groups_are_held_to_the_operator_policy(self) -> None:
        st = self.stack()
        st.client("dynamodb", "cli-history").scan(TableName=st.name("configs"))
        with self.assertRaises(ClientError) as e:
            st.client("dynamodb", "cli-history").put_item(TableName=st.name("configs"), Item={"id": {"S": "x"}})
        self.assertEqual(code(e.exception), ("AccessDeniedException", 400))
        (v,) = st.take_violations()
        self.assertIn("the operator policy's `history` group", v["message"])
        # tick includes the processor's statements, and its own queue drain.
        sqs = st.client("sqs")
        url = sqs.create_queue(QueueName=st.name("files"))["QueueUrl"]
        tick = st.client("sqs", "cli-tick")
        tick.send_message(QueueUrl=url, MessageBody="m")
        got = tick.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
        tick.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
        with self.assertRaises(ClientError) as e:
            st.client("sqs", "processor").receive_message(QueueUrl=url)
        self.assertIn(code(e.exception), [("AccessDenied", 403), ("AccessDeniedException", 403)])
        self.assertEqual(len(st.take_violations()), 1)

    def test_unknown_principals_and_unregistered_stacks_are_refused(self) -> None:
        ddb = self.srv.client("dynamodb", "processor.tnotregistered")
        with self.assertRaises(ClientError) as e:
            ddb.list_tables()
        self.assertEqual(code(e.exception), ("UnrecognizedClientException", 400))
        (v,) = self.srv.take_violations("tnotregistered")
        self.assertEqual(v["kind"], "principal")
        self.assertIn("no test stack is registered under prefix `tnotregistered`", v["message"])
        st = self.stack()
        with self.assertRaises(ClientError) as e:
            st.client("s3", "janitor").list_buckets()
        self.assertEqual(code(e.exception), ("InvalidAccessKeyId", 403))
        with self.assertRaises(ClientError):
            st.client("dynamodb", "cli-nosuchgroup").list_tables()
        kinds = [v["kind"] for v in st.take_violations()]
        self.assertEqual(kinds, ["principal", "principal"])

    def test_unsupported_services_are_violations(self) -> None:
        st = self.stack()
        with self.assertRaises(ClientError) as e:
            st.client("iam", "processor").list_roles()
        self.assertEqual(code(e.exception)[0], "AccessDenied")
        (v,) = st.take_violations()
        self.assertEqual(v["kind"], "unsupported")

    def test_moto_api_and_the_harness_pass_untouched(self) -> None:
        with urllib.request.urlopen(self.srv.endpoint + "/moto-api/data.json") as r:
            self.assertEqual(r.status, 200)
            json.loads(r.read())
        self.srv.client("iam").list_roles()  # the harness is not checked

    def test_presigned_urls_are_checked_as_their_signer(self) -> None:
        st = self.stack()
        s3 = st.client("s3")
        s3.create_bucket(Bucket=st.name("reports"))
        s3.put_object(Bucket=st.name("reports"), Key="failed-rows/i/r/a.csv", Body=b"row")
        s3.put_object(Bucket=st.name("reports"), Key="staging/i/r/a.csv", Body=b"plain")
        preview = st.client("s3", "preview", signature_version="s3v4")  # as the Rust SDK presigns
        url = preview.generate_presigned_url("get_object", Params={"Bucket": st.name("reports"), "Key": "failed-rows/i/r/a.csv"})
        with urllib.request.urlopen(url) as r:
            self.assertEqual(r.read(), b"row")
        url = preview.generate_presigned_url("get_object", Params={"Bucket": st.name("reports"), "Key": "staging/i/r/a.csv"})
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(url)
        self.assertEqual(e.exception.code, 403)
        self.assertEqual(len(st.take_violations()), 1)
        # SigV2 presigned URLs name their signer too.
        url = st.client("s3", "preview", signature_version="s3").generate_presigned_url(
            "get_object", Params={"Bucket": st.name("reports"), "Key": "failed-rows/i/r/a.csv"})
        self.assertIn("AWSAccessKeyId=preview.", url)
        with urllib.request.urlopen(url) as r:
            self.assertEqual(r.read(), b"row")

    def test_sqs_query_protocol(self) -> None:
        st = self.stack()
        url = st.client("sqs").create_queue(QueueName=st.name("files"))["QueueUrl"]

        def send(params: dict[str, str]) -> tuple[int, str]:
            req = AWSRequest(method="POST", url=self.srv.endpoint + "/",
                             data={**params, "Version": "2012-11-05", "QueueUrl": url},
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
            SigV4Auth(Credentials(st.key("processor"), "testing"), "sqs", "us-east-1").add_auth(req)
            prepared = req.prepare()
            r = urllib.request.Request(prepared.url, data=prepared.body.encode() if isinstance(prepared.body, str) else prepared.body,
                                       headers=dict(prepared.headers), method="POST")
            try:
                with urllib.request.urlopen(r) as resp:
                    return resp.status, resp.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode()

        status, body = send({"Action": "SendMessage", "MessageBody": "m"})
        self.assertEqual(status, 200, body)
        batch = {"Action": "SendMessageBatch"}
        for i in range(1, 12):
            batch[f"SendMessageBatchRequestEntry.{i}.Id"] = f"m{i}"
            batch[f"SendMessageBatchRequestEntry.{i}.MessageBody"] = "m"
        status, body = send(batch)
        self.assertEqual(status, 400)
        self.assertIn("<Code>AWS.SimpleQueueService.TooManyEntriesInBatchRequest</Code>", body)
        status, body = send({"Action": "PurgeQueue"})
        self.assertEqual(status, 403)
        self.assertIn("<Code>AccessDenied</Code>", body)
        self.assertEqual([v["kind"] for v in st.take_violations()], ["limit", "iam"])


class MotoAuthTest(unittest.TestCase):
    """INITIAL_NO_AUTH_ACTION_COUNT: moto checks its own keys, and the strict layer's
    principals still pass (moto does not know them; the strict layer authorized them)."""

    def test_moto_auth_and_strict_principals_together(self) -> None:
        srv = server(INITIAL_NO_AUTH_ACTION_COUNT="3")
        iam = srv.client("iam")
        iam.create_user(UserName="admin")
        iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        with self.assertRaises(ClientError):
            srv.client("s3").list_buckets()  # moto now refuses the unknown `testing` key
        import boto3
        from botocore.config import Config

        admin = boto3.client("s3", endpoint_url=srv.endpoint, region_name="us-east-1",
                             aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                             config=Config(s3={"addressing_style": "path"}))
        status, _ = srv.call("POST", "/_strict/stack", {"prefix": "tauth000001", "test": self.id(),
                                                         "parameters": {"SourceBucketPattern": "tauth000001-*"}})
        self.assertEqual(status, 200)
        admin.create_bucket(Bucket="tauth000001-src")
        admin.put_object(Bucket="tauth000001-src", Key="k", Body=b"v")
        self.assertEqual(srv.client("s3", "processor.tauth000001").get_object(Bucket="tauth000001-src", Key="k")["Body"].read(), b"v")
        self.assertEqual(srv.violations("tauth000001"), [])


if __name__ == "__main__":
    unittest.main()
