"""Checks every example and demo config against docs/config.schema.json."""
import glob
import json
import sys

import jsonschema

schema = json.load(open("docs/config.schema.json"))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
bad = 0
files = [f for f in sorted(glob.glob("examples/*.json") + glob.glob("demo/*.json")) if not f.endswith(".mapping.json")]
for path in files:
    for err in validator.iter_errors(json.load(open(path))):
        bad += 1
        print(f"{path}: {'/'.join(map(str, err.path))}: {err.message}")
print(f"{len(files)} configs checked against docs/config.schema.json, {bad} problem(s)")
sys.exit(1 if bad else 0)
