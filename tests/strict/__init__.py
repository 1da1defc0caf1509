"""Strict moto: moto's server behind AWS's own rules (IAM per function and CLI group,
documented request limits, DynamoDB contention). See docs/testing.md."""
