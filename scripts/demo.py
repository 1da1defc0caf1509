"""Demo helper (boto3 against the local moto server): seeds the customer's bucket, and
shows what the import wrote."""
import email
import email.policy
import json
import os
import sys
import urllib.request

import boto3
from boto3.dynamodb.types import TypeDeserializer

PREFIX = os.environ.get("S3IMPORTS_PREFIX", "demo")
BUCKET = "acme-exports"


def client(name):
    return boto3.client(name, endpoint_url=os.environ["AWS_ENDPOINT_URL"])


def setup(work):
    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET)
    uploads = [
        ("registered_user_data_20261127.csv.pgp", "moengage/users/"),
        ("Purchase Summary_20261127.csv.gz", "moengage/events/"),
    ]
    for name, folder in uploads:
        s3.upload_file(os.path.join(work, name), BUCKET, folder + name)
        print(f"uploaded s3://{BUCKET}/{folder}{name}")
    # Files that must not be imported: a sub-folder and a name without a date.
    s3.put_object(Bucket=BUCKET, Key="moengage/users/archive/registered_user_data_20261101.csv", Body=b"ID\nx\n")
    s3.put_object(Bucket=BUCKET, Key="moengage/users/registered_user_data_latest.csv", Body=b"ID\nx\n")


def heading(text):
    print(f"\n\033[1m== {text}\033[0m")


def show():
    ddb = client("dynamodb")
    heading("Ingested items")
    for role in ["users", "events"]:
        table = f"{PREFIX}-{role}"
        items = ddb.scan(TableName=table)["Items"]
        print(f"{table}: {len(items)} item(s)")
        for item in items[:3]:
            flat = {k: TypeDeserializer().deserialize(v) for k, v in sorted(item.items())}
            print("  " + json.dumps(flat, ensure_ascii=False, default=str))
    heading("Failed-rows report")
    s3 = client("s3")
    listed = s3.list_objects_v2(Bucket=f"{PREFIX}-reports").get("Contents", [])
    for obj in listed:
        print(f"s3://{PREFIX}-reports/{obj['Key']}")
        body = s3.get_object(Bucket=f"{PREFIX}-reports", Key=obj["Key"])["Body"].read()
        print(body.decode())
    heading("Notification emails (as SES received them)")
    data = json.load(urllib.request.urlopen(os.environ["AWS_ENDPOINT_URL"] + "/moto-api/data.json"))
    for m in data.get("ses", {}).get("Message", []) or []:
        print(f"To: {', '.join(m.get('destinations', {}).get('ToAddresses', []))}")
        print(f"Subject: {m.get('subject')}")
        print(m.get("body"))
        print()
    # Emails with failed-rows reports attached are sent as raw MIME messages.
    for m in data.get("ses", {}).get("RawMessage", []) or []:
        mail = email.message_from_string(m.get("raw_data", ""), policy=email.policy.default)
        print(f"To: {mail['To']}")
        print(f"Subject: {mail['Subject']}")
        text = mail.get_body(preferencelist=("plain",))
        print(text.get_content() if text else "")
        for part in mail.iter_attachments():
            size = len(part.get_payload(decode=True) or b"")
            print(f"Attached: {part.get_filename()} ({part.get_content_type()}, {size} bytes)")
        print()


if __name__ == "__main__":
    if sys.argv[1] == "setup":
        setup(sys.argv[2])
    else:
        show()
