//! Least privilege: no statement wider than AWS allows, secrets, roles and buckets
//! pinned to this account.

use serde_norway::Value;

use super::*;

// ------------------------------------------------------------------ least privilege

#[test]
fn no_statement_grants_every_resource_unless_aws_allows_no_other() {
    let t = template();
    for (function, s) in statements(&t) {
        let star = |r: &Value| r.as_str() == Some("*");
        let r = &s["Resource"];
        if star(r) || r.as_sequence().into_iter().flatten().any(star) {
            for a in actions(s) {
                assert!(
                    ONLY_STAR.iter().any(|(x, _)| *x == a),
                    "{function}: `{a}` on every resource; scope it (only {ONLY_STAR:?} may use \"*\")"
                );
            }
        }
    }
}

#[test]
fn emails_go_from_the_sender_identity_only() {
    let t = template();
    // AWS: `!Select [1, !Split ["@", SenderEmail]]` fails the deployment when the value
    // has no `@`, so the parameter must refuse one first.
    let pattern = t["Parameters"]["SenderEmail"]["AllowedPattern"]
        .as_str()
        .unwrap_or_default();
    assert!(
        pattern.contains('@'),
        "SenderEmail needs an AllowedPattern with `@`"
    );
    for (function, s) in statements(&t) {
        if actions(s).contains(&"ses:SendEmail") {
            let text = format!("{:?}", s["Resource"]);
            assert!(
                text.contains(":identity/${SenderEmail}") && text.contains(":identity/${Domain}"),
                "{function}: ses:SendEmail must name the sender's address and domain identities: {text}"
            );
        }
    }
}

#[test]
fn roles_are_assumed_only_in_listed_accounts_and_with_an_external_id() {
    let t = template();
    let mut seen = 0;
    for (function, s) in statements(&t) {
        if actions(s).contains(&"sts:AssumeRole") {
            seen += 1;
            let c = &s["Condition"];
            assert_eq!(
                ref_target(&c["StringEquals"]["aws:ResourceAccount"]),
                Some("CustomerAccountIds"),
                "{function}: sts:AssumeRole must be limited to CustomerAccountIds"
            );
            assert_eq!(
                c["Null"]["sts:ExternalId"].as_str(),
                Some("false"),
                "{function}: sts:AssumeRole must require an external id"
            );
        }
    }
    assert_eq!(seen, 3, "every function reaches customer buckets");
    let p = &t["Parameters"]["CustomerAccountIds"];
    assert_eq!(p["Type"].as_str(), Some("CommaDelimitedList"));
    assert_eq!(
        p["Default"].as_str(),
        Some(""),
        "no account is trusted by default"
    );
}

#[test]
fn source_bucket_patterns_are_pinned_to_this_account() {
    let t = template();
    for (function, s) in statements(&t) {
        let text = format!("{:?}", s["Resource"]);
        if text.contains("${SourceBucketPattern}") {
            assert_eq!(
                ref_target(&s["Condition"]["StringEquals"]["s3:ResourceAccount"]),
                Some("AWS::AccountId"),
                "{function}: an S3 ARN names no account, so {text} would match buckets of every account"
            );
        }
    }
}

#[test]
fn secrets_are_read_only_when_bound_to_imports_and_discovery_reads_access_keys_only() {
    let t = template();
    let tag = format!(
        "secretsmanager:ResourceTag/{}",
        s3imports::ports::SECRET_TAG
    );
    for (function, s) in statements(&t) {
        let acts = actions(s);
        if !acts.iter().any(|a| a.starts_with("secretsmanager:")) {
            continue;
        }
        assert!(
            acts.contains(&"secretsmanager:DescribeSecret"),
            "{function}: the binding tag is read with DescribeSecret"
        );
        assert_eq!(
            s["Condition"]["Null"][tag.as_str()].as_str(),
            Some("false"),
            "{function}: only secrets tagged for imports"
        );
        if function == "DiscoveryFunction" {
            assert_eq!(
                s["Condition"]["StringEquals"]["secretsmanager:ResourceTag/s3imports:secret-kind"]
                    .as_str(),
                Some("access-key"),
                "discovery lists buckets: it needs access keys, never PGP keys"
            );
        }
    }
}

#[test]
fn customers_can_trust_the_function_roles_by_arn() {
    let t = template();
    for (output, role) in [
        ("DiscoveryRoleArn", "DiscoveryFunctionRole"),
        ("ProcessorRoleArn", "ProcessorFunctionRole"),
        ("PreviewRoleArn", "PreviewFunctionRole"),
    ] {
        assert_eq!(
            get_att(&t["Outputs"][output]["Value"]),
            Some((role.to_string(), "Arn".to_string())),
            "{output}"
        );
        // AWS: SAM creates `<Function>Role` only for a function without its own `Role`;
        // otherwise the GetAtt names no resource and the deployment fails.
        let function = role.trim_end_matches("Role");
        assert!(!t["Resources"][function].is_null(), "{function}");
        assert!(
            t["Resources"][function]["Properties"]["Role"].is_null(),
            "{function} sets its own Role: SAM makes no {role}"
        );
    }
}
