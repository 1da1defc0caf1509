//! What many tests start from: a fixed clock and a users import's config.
use super::*;

/// A registered-users import of `folder` in the test's `acme-exports` bucket: `ID` and
/// an integer `Age`, hourly on the hour, emailing the test's recipient; `extra`'s
/// top-level fields replace or add to these.
pub fn users_config(
    env: &TestEnv,
    id: &str,
    folder: &str,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut v = serde_json::json!({
        "id": id,
        "name": format!("Users {id}"),
        "kind": {"type": "registered_users"},
        "source": {"bucket": env.scoped("acme-exports"), "folder": folder, "datetime_format": "yyyymmdd"},
        "mapping": {"columns": [
            {"column": "ID", "attribute": "user_id"},
            {"column": "Age", "attribute": "age", "type": "integer"}
        ]},
        "schedule": {"type": "hourly", "minute": 0},
        "notifications": {"recipients": [env.recipient()]}
    });
    for (k, val) in extra.as_object().into_iter().flatten() {
        v[k] = val.clone();
    }
    v
}

/// The fixed clock most tests run on: 2026-11-28 09:00 UTC.
pub fn clock() -> s3imports::FixedClock {
    use chrono::TimeZone as _;
    s3imports::FixedClock::new(
        chrono::Utc
            .with_ymd_and_hms(2026, 11, 28, 9, 0, 0)
            .single()
            .unwrap_or_default(),
    )
}
