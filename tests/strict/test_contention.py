"""DynamoDB contention as the strict server produces it: transaction conflicts and
partition throttling, in DynamoDB's error shapes; neither is a violation."""

from __future__ import annotations

import threading
import time
import unittest

from botocore.exceptions import ClientError

from strict._support import Stack, server


def s(v: str) -> dict:
    return {"S": v}


class ContentionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.srv = server()

    def test_transactions_conflict_on_items_another_transaction_holds(self) -> None:
        st = Stack(self.srv, self.id(), tables=("ledger",), contention={"transaction_hold_ms": 1500})
        ledger = st.name("ledger")

        def update(sk: str) -> dict:
            return {"Update": {"TableName": ledger, "Key": {"pk": s("i"), "sk": s(sk)},
                               "UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}}

        first: list[object] = []
        holder = threading.Thread(target=lambda: first.append(
            st.client("dynamodb", "processor").transact_write_items(TransactItems=[update("FILE#a"), update("RUN#r")])))
        holder.start()
        time.sleep(0.5)
        ddb = st.client("dynamodb", "preview")
        with self.assertRaises(ClientError) as e:
            ddb.transact_write_items(TransactItems=[update("FILE#b"), update("RUN#r")])
        err = e.exception.response
        self.assertEqual(err["Error"]["Code"], "TransactionCanceledException")
        self.assertEqual([r["Code"] for r in err["CancellationReasons"]], ["None", "TransactionConflict"])
        with self.assertRaises(ClientError) as e:
            ddb.update_item(TableName=ledger, Key={"pk": s("i"), "sk": s("RUN#r")}, UpdateExpression="ADD n :one",
                            ExpressionAttributeValues={":one": {"N": "1"}})
        self.assertEqual(e.exception.response["Error"]["Code"], "TransactionConflictException")
        # Reads outside transactions are never blocked; a transactional read is.
        ddb.get_item(TableName=ledger, Key={"pk": s("i"), "sk": s("RUN#r")})
        with self.assertRaises(ClientError) as e:
            ddb.transact_get_items(TransactItems=[{"Get": {"TableName": ledger, "Key": {"pk": s("i"), "sk": s("RUN#r")}}}])
        self.assertEqual(e.exception.response["CancellationReasons"][0]["Code"], "TransactionConflict")
        holder.join()
        self.assertEqual(len(first), 1, "the first transaction went through")
        # Once it ended, the item is free again.
        ddb.update_item(TableName=ledger, Key={"pk": s("i"), "sk": s("RUN#r")}, UpdateExpression="ADD n :one",
                        ExpressionAttributeValues={":one": {"N": "1"}})
        item = st.client("dynamodb").get_item(TableName=ledger, Key={"pk": s("i"), "sk": s("RUN#r")})["Item"]
        self.assertEqual(item["n"], {"N": "2"})
        self.assertEqual(st.stats()["conflicts"], 3)
        self.assertEqual(st.violations(), [], "contention is not a violation")

    def test_a_hot_partition_throttles_a_batch_into_unprocessed_items(self) -> None:
        st = Stack(self.srv, self.id(), tables=("events",),
                   contention={"partition_write_units_per_second": 2, "table_write_units_per_second": 1000})
        events = st.name("events")
        ddb = st.client("dynamodb", "processor")
        hot = [{"PutRequest": {"Item": {"user_id": s("hot"), "event_key": s(f"e{i:02}")}}} for i in range(20)]
        out = ddb.batch_write_item(RequestItems={events: hot})
        left = out["UnprocessedItems"].get(events, [])
        self.assertIn(len(left), (17, 18), "two a second, one second of burst")
        self.assertEqual(left, hot[20 - len(left):], "the unprocessed requests, as sent")
        stored = st.client("dynamodb").scan(TableName=events)["Items"]
        self.assertEqual(len(stored), 20 - len(left))
        # Everything throttled: the exception, which the SDKs retry.
        with self.assertRaises(ClientError) as e:
            ddb.batch_write_item(RequestItems={events: left[:5]})
        self.assertEqual(e.exception.response["Error"]["Code"], "ProvisionedThroughputExceededException")
        with self.assertRaises(ClientError) as e:
            ddb.put_item(TableName=events, Item={"user_id": s("hot"), "event_key": s("x")})
        self.assertEqual(e.exception.response["Error"]["Code"], "ProvisionedThroughputExceededException")
        # Another partition has its own throughput.
        ddb.put_item(TableName=events, Item={"user_id": s("cold"), "event_key": s("x")})
        # A transaction on the hot partition is cancelled with ThrottlingError.
        with self.assertRaises(ClientError) as e:
            ddb.transact_write_items(TransactItems=[{"Put": {"TableName": events, "Item": {"user_id": s("hot"), "event_key": s("t")}}}])
        self.assertEqual(e.exception.response["CancellationReasons"][0]["Code"], "ThrottlingError")
        # The bucket refills at its rate.
        time.sleep(1.1)
        out = ddb.batch_write_item(RequestItems={events: left[:2]})
        self.assertEqual(out["UnprocessedItems"], {})
        stats = st.stats()
        self.assertGreaterEqual(stats["throttled"], 24)
        self.assertEqual(st.violations(), [])

    def test_reads_are_throttled_per_partition_too(self) -> None:
        st = Stack(self.srv, self.id(), tables=("ledger",), contention={"partition_read_units_per_second": 2})
        ledger = st.name("ledger")
        ddb = st.client("dynamodb", "processor")
        keys = [{"pk": s("p"), "sk": s(f"k{i}")} for i in range(8)]
        out = ddb.batch_get_item(RequestItems={ledger: {"Keys": keys}})  # eventually consistent: 0.5 each
        unprocessed = out["UnprocessedKeys"].get(ledger, {}).get("Keys", [])
        self.assertEqual(len(unprocessed), 4)
        with self.assertRaises(ClientError) as e:
            ddb.get_item(TableName=ledger, Key=keys[0], ConsistentRead=True)
        self.assertEqual(e.exception.response["Error"]["Code"], "ProvisionedThroughputExceededException")


if __name__ == "__main__":
    unittest.main()
