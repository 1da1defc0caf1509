"""AWS's request limits, refused as AWS refuses them (code, status, protocol shape),
each recorded as a `limit` violation."""

from __future__ import annotations

import unittest

from botocore.exceptions import ClientError

from strict._support import Stack, server


def code(e: ClientError) -> tuple[str, int]:
    return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]


def s(v: str) -> dict:
    return {"S": v}


class LimitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.srv = server()
        cls.st = Stack(cls.srv, "strict.test_limits")
        cls.ledger = cls.st.name("ledger")

    def tearDown(self) -> None:
        self.st.take_violations()

    def refused(self, fn, expected: tuple[str, int], fragment: str = "") -> ClientError:
        with self.assertRaises(ClientError) as e:
            fn()
        self.assertEqual(code(e.exception), expected, e.exception.response["Error"])
        if fragment:
            self.assertIn(fragment, e.exception.response["Error"]["Message"])
        found = self.st.take_violations()
        self.assertEqual([v["kind"] for v in found], ["limit"], found)
        return e.exception

    # ------------------------------------------------------------ DynamoDB

    def test_item_size_by_dynamodbs_rules(self) -> None:
        ddb = self.st.client("dynamodb", "processor")
        # pk (2+1) + sk (2+1) + data (4+N) bytes: 409,600 is the limit.
        ddb.put_item(TableName=self.ledger, Item={"pk": s("a"), "sk": s("b"), "data": s("x" * 409_590)})
        self.refused(lambda: ddb.put_item(TableName=self.ledger, Item={"pk": s("a"), "sk": s("c"), "data": s("x" * 409_591)}),
                     ("ValidationException", 400), "Item size has exceeded the maximum allowed size")
        # Numbers count (digits/2)+1, lists and maps 3 bytes plus 1 a member.
        nested = {"L": [{"M": {"k": {"N": "12345678901234567890"}}}]}
        ddb.put_item(TableName=self.ledger, Item={"pk": s("a"), "sk": s("d"), "n": nested})

    def test_an_update_that_grows_an_item_past_400_kb_is_refused_and_undone(self) -> None:
        self.st.client("dynamodb").put_item(TableName=self.ledger, Item={"pk": s("u"), "sk": s("1"), "data": s("x" * 300_000)})
        ddb = self.st.client("dynamodb", "processor")
        self.refused(lambda: ddb.update_item(TableName=self.ledger, Key={"pk": s("u"), "sk": s("1")},
                                             UpdateExpression="SET more = :m", ExpressionAttributeValues={":m": s("y" * 200_000)}),
                     ("ValidationException", 400), "Item size to update has exceeded the maximum allowed size")
        item = self.st.client("dynamodb").get_item(TableName=self.ledger, Key={"pk": s("u"), "sk": s("1")})["Item"]
        self.assertNotIn("more", item, "the item is as it was")
        # A new item the update would create is not left behind either.
        self.refused(lambda: ddb.update_item(TableName=self.ledger, Key={"pk": s("u"), "sk": s("2")},
                                             UpdateExpression="SET a = :a, b = :b",
                                             ExpressionAttributeValues={":a": s("y" * 205_000), ":b": s("z" * 205_000)}),
                     ("ValidationException", 400))
        self.assertNotIn("Item", self.st.client("dynamodb").get_item(TableName=self.ledger, Key={"pk": s("u"), "sk": s("2")}))

    def test_key_and_expression_sizes(self) -> None:
        ddb = self.st.client("dynamodb", "processor")
        self.refused(lambda: ddb.get_item(TableName=self.ledger, Key={"pk": s("p" * 2049), "sk": s("1")}),
                     ("ValidationException", 400), "Size of hashkey has exceeded")
        self.refused(lambda: ddb.get_item(TableName=self.ledger, Key={"pk": s("p"), "sk": s("r" * 1025)}),
                     ("ValidationException", 400), "range keys has exceeded")
        names = {f"#a{i}": f"attribute_{i}" for i in range(400)}
        expr = "SET " + ", ".join(f"#a{i} = :v" for i in range(400))
        self.assertGreater(len(expr), 4096)
        self.refused(lambda: ddb.update_item(TableName=self.ledger, Key={"pk": s("p"), "sk": s("1")}, UpdateExpression=expr,
                                             ExpressionAttributeNames=names, ExpressionAttributeValues={":v": s("v")}),
                     ("ValidationException", 400), "Invalid UpdateExpression: Expression size has exceeded the maximum allowed size")
        self.refused(lambda: ddb.update_item(TableName=self.ledger, Key={"pk": s("p"), "sk": s("1")}, UpdateExpression="SET a = :a",
                                             ExpressionAttributeValues={":a": s("v"), ":unused": s("w")}),
                     ("ValidationException", 400), "unused in expressions: keys: {:unused}")

    def test_numbers(self) -> None:
        ddb = self.st.client("dynamodb", "processor")
        for n, fragment in [("1" * 39, "more than 38 significant digits"),
                            ("1E+126", "Number overflow"),
                            ("-1E-131", "Number underflow")]:
            self.refused(lambda n=n: ddb.update_item(TableName=self.ledger, Key={"pk": s("n"), "sk": s("1")},
                                                     UpdateExpression="SET v = :n", ExpressionAttributeValues={":n": {"N": n}}),
                         ("ValidationException", 400), fragment)
        ddb.update_item(TableName=self.ledger, Key={"pk": s("n"), "sk": s("1")}, UpdateExpression="SET v = :n, w = :z",
                        ExpressionAttributeValues={":n": {"N": "9.9999999999999999999999999999999999999E+125"}, ":z": {"N": "0.000"}})

    def test_batches_and_transactions(self) -> None:
        ddb = self.st.client("dynamodb", "processor")
        events = self.st.name("events")
        puts = [{"PutRequest": {"Item": {"user_id": s("u"), "event_key": s(f"e{i}")}}} for i in range(26)]
        self.refused(lambda: ddb.batch_write_item(RequestItems={events: puts}), ("ValidationException", 400),
                     "Too many items requested for the BatchWriteItem call")
        ddb.batch_write_item(RequestItems={events: puts[:25]})
        keys = [{"pk": s("b"), "sk": s(f"k{i}")} for i in range(101)]
        self.refused(lambda: ddb.batch_get_item(RequestItems={self.ledger: {"Keys": keys}}), ("ValidationException", 400),
                     "Too many items requested for the BatchGetItem call")
        update = lambda i: {"Update": {"TableName": self.ledger, "Key": {"pk": s("t"), "sk": s(f"k{i}")},  # noqa: E731
                                       "UpdateExpression": "SET n = :n", "ExpressionAttributeValues": {":n": {"N": "1"}}}}
        self.refused(lambda: ddb.transact_write_items(TransactItems=[update(i) for i in range(101)]),
                     ("ValidationException", 400), "less than or equal to 100")
        self.refused(lambda: ddb.transact_write_items(TransactItems=[update(1), update(1)]),
                     ("ValidationException", 400), "Transaction request cannot include multiple operations on one item")
        ddb.transact_write_items(TransactItems=[update(i) for i in range(100)])

    # ------------------------------------------------------------ SQS

    def test_partiql_inserts_in_a_batch_take_only_free_keys(self) -> None:
        users = self.st.name("users")
        ddb = self.st.client("dynamodb", "processor")
        self.st.client("dynamodb").put_item(TableName=users, Item={"user_id": s("old"), "name": s("kept")})
        insert = {"Statement": f'INSERT INTO "{users}" VALUE {{\'user_id\': ?, \'it\'\'s\': ?}}'}
        out = ddb.batch_execute_statement(Statements=[
            {**insert, "Parameters": [s("new"), s("v1")]},
            {**insert, "Parameters": [s("old"), s("v2")]},
            {**insert, "Parameters": [s("short")]},
        ])["Responses"]
        self.assertNotIn("Error", out[0])
        self.assertEqual(out[1]["Error"]["Code"], "DuplicateItem")
        self.assertEqual(out[2]["Error"]["Code"], "ValidationError")
        get = lambda k: self.st.client("dynamodb").get_item(TableName=users, Key={"user_id": s(k)}).get("Item")
        self.assertEqual(get("new"), {"user_id": s("new"), "it's": s("v1")})
        self.assertEqual(get("old"), {"user_id": s("old"), "name": s("kept")}, "an existing item is left as it was")
        self.assertIsNone(get("short"))
        self.refused(lambda: ddb.batch_execute_statement(Statements=[{**insert, "Parameters": [s(f"u{i}"), s("v")]} for i in range(26)]),
                     ("ValidationException", 400), "less than or equal to 25")
        wide = {"Statement": f'INSERT INTO "{users}" VALUE {{\'user_id\': ?, \'{"a" * 8200}\': ?}}', "Parameters": [s("w"), s("v")]}
        self.refused(lambda: ddb.batch_execute_statement(Statements=[wide]), ("ValidationException", 400), "8192")
        # The role needs dynamodb:PartiQLInsert on the table: the ledger's is not granted.
        with self.assertRaises(ClientError) as e:
            ddb.batch_execute_statement(Statements=[{"Statement": f'INSERT INTO "{self.ledger}" VALUE {{\'pk\': ?, \'sk\': ?}}',
                                                     "Parameters": [s("a"), s("b")]}])
        self.assertEqual(code(e.exception), ("AccessDeniedException", 400))
        self.assertEqual([v["kind"] for v in self.st.take_violations()], ["iam"])

    def test_sqs_messages_and_batches(self) -> None:
        url = self.st.client("sqs").create_queue(QueueName=self.st.name("files"))["QueueUrl"]
        sqs = self.st.client("sqs", "processor")
        attrs = {"kind": {"DataType": "String", "StringValue": "a" * 300}}
        sqs.send_message(QueueUrl=url, MessageBody="m" * 262_144)
        self.refused(lambda: sqs.send_message(QueueUrl=url, MessageBody="m" * 262_000, MessageAttributes=attrs),
                     ("InvalidParameterValue", 400), "Message must be shorter than 262144 bytes")
        self.refused(lambda: sqs.send_message(QueueUrl=url, MessageBody="m", DelaySeconds=901), ("InvalidParameterValue", 400))
        self.refused(lambda: sqs.change_message_visibility(QueueUrl=url, ReceiptHandle="r", VisibilityTimeout=43_201),
                     ("InvalidParameterValue", 400), "VisibilityTimeout")
        entries = [{"Id": f"m{i}", "MessageBody": "m"} for i in range(11)]
        e = self.refused(lambda: sqs.send_message_batch(QueueUrl=url, Entries=entries), (
            "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", 400))
        self.assertEqual(e.response["Error"].get("QueryErrorCode"), "TooManyEntriesInBatchRequest")
        big = [{"Id": f"m{i}", "MessageBody": "m" * 100_000} for i in range(3)]
        self.refused(lambda: sqs.send_message_batch(QueueUrl=url, Entries=big),
                     ("AWS.SimpleQueueService.BatchRequestTooLong", 400), "Batch requests cannot be longer than 262144 bytes")
        sqs.send_message_batch(QueueUrl=url, Entries=big[:2])

    # ------------------------------------------------------------ SES, SNS

    def test_ses_recipients(self) -> None:
        self.st.client("sesv2").create_email_identity(EmailIdentity="s3imports@example.com")
        ses = self.st.client("sesv2", "processor")
        msg = {"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}}
        to = [f"r{i}@x.example" for i in range(40)]
        cc = [f"c{i}@x.example" for i in range(11)]
        self.refused(lambda: ses.send_email(FromEmailAddress="s3imports@example.com",
                                            Destination={"ToAddresses": to, "CcAddresses": cc}, Content=msg),
                     ("BadRequestException", 400), "Recipient count exceeds 50")
        ses.send_email(FromEmailAddress="s3imports@example.com", Destination={"ToAddresses": to, "CcAddresses": cc[:10]}, Content=msg)

    def test_sns_subject_and_size(self) -> None:
        arn = self.st.client("sns").create_topic(Name=self.st.name("alerts"))["TopicArn"]
        sns = self.st.client("sns", "processor")
        sns.publish(TopicArn=arn, Subject="s" * 99, Message="m")
        self.refused(lambda: sns.publish(TopicArn=arn, Subject="s" * 100, Message="m"), ("InvalidParameter", 400), "Subject")
        self.refused(lambda: sns.publish(TopicArn=arn, Subject="two\nlines", Message="m"), ("InvalidParameter", 400), "Subject")
        self.refused(lambda: sns.publish(TopicArn=arn, Message="m" * 262_145), ("InvalidParameter", 400), "Message too long")

    # ------------------------------------------------------------ S3

    def test_s3_keys_and_copies(self) -> None:
        s3 = self.st.client("s3")
        src = self.st.name("src")
        s3.create_bucket(Bucket=src)
        s3.create_bucket(Bucket=self.st.name("reports"))
        s3.put_object(Bucket=src, Key="in/big.csv", Body=b"x")
        proc = self.st.client("s3", "processor")
        self.refused(lambda: proc.put_object(Bucket=self.st.name("reports"), Key="failed-rows/" + "k" * 1020, Body=b"r"),
                     ("KeyTooLongError", 400))
        proc.copy_object(Bucket=src, Key="done/big.csv", CopySource={"Bucket": src, "Key": "in/big.csv"})
        status, _ = self.srv.call("POST", "/_strict/object-size", {"bucket": src, "key": "in/big.csv", "size": 5 * 1024 ** 3 + 1})
        self.assertEqual(status, 200)
        self.refused(lambda: proc.copy_object(Bucket=src, Key="done/big2.csv", CopySource={"Bucket": src, "Key": "in/big.csv"}),
                     ("InvalidRequest", 400), "larger than the maximum allowable size for a copy source")
        self.srv.call("POST", "/_strict/object-size", {"bucket": src, "key": "in/big.csv", "size": None})
        proc.copy_object(Bucket=src, Key="done/big3.csv", CopySource={"Bucket": src, "Key": "in/big.csv"})


class CopyTaggingTest(unittest.TestCase):
    def test_copying_a_tagged_object_needs_get_object_tagging_on_the_source(self) -> None:
        srv = server()
        st = Stack(srv, self.id(), tables=(), remove=[{"role": "processor", "action": "s3:GetObjectTagging"}])
        s3 = st.client("s3")
        src = st.name("src")
        s3.create_bucket(Bucket=src)
        s3.put_object(Bucket=src, Key="plain.csv", Body=b"x")
        s3.put_object(Bucket=src, Key="tagged.csv", Body=b"x", Tagging="owner=acme")
        proc = st.client("s3", "processor")
        proc.copy_object(Bucket=src, Key="moved/plain.csv", CopySource={"Bucket": src, "Key": "plain.csv"})
        proc.copy_object(Bucket=src, Key="moved/t1.csv", CopySource={"Bucket": src, "Key": "tagged.csv"}, TaggingDirective="REPLACE")
        with self.assertRaises(ClientError) as e:
            proc.copy_object(Bucket=src, Key="moved/t2.csv", CopySource={"Bucket": src, "Key": "tagged.csv"})
        self.assertEqual(code(e.exception), ("AccessDenied", 403))
        (v,) = st.take_violations()
        self.assertEqual((v["operation"], v["action"], v["resource"]), ("CopyObject", "s3:GetObjectTagging", f"arn:aws:s3:::{src}/tagged.csv"))


if __name__ == "__main__":
    unittest.main()
