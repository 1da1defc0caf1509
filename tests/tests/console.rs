//! `s3imports console` in headless Chromium against moto: the set-up's three steps to a
//! stored config (with the fetched rows checked against the mapping, and a duplicate
//! refused), the fetch-file messages, a tick's run with its files, reasons and report,
//! the actions (run now and its refusal, replay, dry run, archive), segments, and the
//! guard (token, CSRF, Host) and escaping of hostile names.
//!
//! `S3IMPORTS_SCREENSHOTS=DIR` saves each page's picture there (`make screenshots`).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use fantoccini::Locator;
use s3imports_tests::{
    Browser, ConsoleServer, TestEnv, raw_http, s3imports, users_config, write_json,
};
use serde_json::json;

/// An import's item in the configs table (its `config` and its `status`).
async fn config_item(env: &TestEnv, id: &str) -> Option<serde_json::Value> {
    env.scan(&env.stack.configs_table)
        .await
        .into_iter()
        .find(|i| i.get("id").and_then(|v| v.as_s().ok()) == Some(&id.to_string()))
        .map(|i| s3imports::aws::item::item_to_json(&i))
}

async fn step_one(b: &Browser, id: &str, bucket: &str, folder: &str) {
    b.click("a[href='/new']").await;
    b.wait_text("step 1 of 3").await;
    // The first kind, registered users, is the one chosen when the page opens.
    let kind = b
        .find("select[name=kind]")
        .await
        .prop("value")
        .await
        .unwrap();
    assert_eq!(kind.as_deref(), Some("registered_users"));
    b.fill("input[name=id]", id).await;
    b.fill("input[name=bucket]", bucket).await;
    b.fill("input[name=folder]", folder).await;
}

#[tokio::test]
async fn a_new_import_in_three_steps_is_checked_against_its_rows_and_stored() {
    let env = TestEnv::new().await;
    let bucket = env.scoped("acme-exports");
    env.bucket(&bucket).await;
    env.put_object(
        &bucket,
        "users/registered_user_data_20261127.csv",
        "ID,signup,Age\nu1,2026-01-05,30\nu2,2026-02-11,41\n",
    )
    .await;
    let console = ConsoleServer::start(&env);
    let b = Browser::start().await;
    b.goto(&console.url).await;
    b.wait_text("No imports here yet").await;
    b.screenshot("imports-empty").await;

    step_one(&b, "web-users", &bucket, "users").await;
    b.screenshot("new-1-source").await;
    b.click("button[value=continue]").await;
    let text = b.wait_text("step 2 of 3").await;
    // The newest file's top rows, and each column with its sample.
    assert!(
        text.contains("registered_user_data_20261127.csv") && text.contains("2026-02-11"),
        "{text}"
    );
    // The date-time format inferred from the fetched values (which they match).
    let format = b.find("input[name='format.signup']").await;
    assert_eq!(
        format.prop("value").await.unwrap().as_deref(),
        Some("YYYY-MM-DD")
    );
    b.screenshot("new-2-mapping").await;

    // The column that identifies a user, as MoEngage's mapping step asks.
    let text = b.wait_text("need a column mapped to `user_id`").await;
    assert!(text.contains("step 2 of 3"), "{text}");
    b.fill("input[name='column.ID']", "user_id").await;
    // A mapping the fetched rows fail: shown row by row before anything is saved.
    b.select_live("select[name='type.Age']", "boolean").await;
    b.click("button[value=continue]").await;
    let text = b.wait_text("problem").await;
    assert!(
        text.contains("step 2 of 3")
            && text.contains("row 2, column `Age`")
            && text.contains("is not a boolean"),
        "{text}"
    );
    b.select_live("select[name='type.Age']", "integer").await;
    b.click("button[value=continue]").await;
    b.wait_text("step 3 of 3").await;
    b.fill("input[name=recipients]", &env.recipient()).await;
    b.screenshot("new-3-frequency").await;
    b.click("button[value=save]").await;
    b.wait_text("Import web-users created").await;

    let item = config_item(&env, "web-users")
        .await
        .expect("the config item");
    let config = &item["config"];
    let signup = config["mapping"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["column"] == "signup")
        .cloned()
        .unwrap();
    assert_eq!(signup["format"], "YYYY-MM-DD", "{config}");
    assert_eq!(config["source"]["folder"], "users");

    // The same folder again, as another import: refused, naming the one that has it.
    // (Its mapping this time from a MoEngage mapping file, pasted.)
    step_one(&b, "web-users-again", &bucket, "users").await;
    b.click("button[value=continue]").await;
    b.wait_text("step 2 of 3").await;
    let mapping = json!({"mapping": [
        {"column": "ID", "moe_attr": "user_id", "type": "string"},
        {"column": "signup", "moe_attr": "signup", "type": "datetime", "datetime_format": "YYYY-MM-DD"},
        {"column": "Age", "moe_attr": "age", "type": "integer"}
    ]});
    b.fill("textarea[name=mapping_text]", &mapping.to_string())
        .await;
    b.click("button[value=continue]").await;
    b.wait_text("step 3 of 3").await;
    b.click("button[value=save]").await;
    let text = b.wait_text("duplicates active import").await;
    assert!(text.contains("`web-users`"), "{text}");
    assert!(config_item(&env, "web-users-again").await.is_none());
    b.close().await;
}

#[tokio::test]
async fn fetch_file_shows_moengages_messages() {
    let env = TestEnv::new().await;
    let bucket = env.scoped("acme-exports");
    env.bucket(&bucket).await;
    env.put_object(
        &bucket,
        "empty/registered_user_data_20261127.csv",
        "ID,Age\n",
    )
    .await;
    let console = ConsoleServer::start(&env);
    let b = Browser::start().await;
    b.goto(&console.url).await;

    step_one(&b, "nothing-there", &bucket, "nothing").await;
    b.click("button[value=continue]").await;
    let text = b
        .wait_text("Please check the folder path and try again")
        .await;
    assert!(text.contains("step 1 of 3"), "{text}");
    b.screenshot("new-1-check-folder").await;

    b.fill("input[name=folder]", "empty").await;
    b.click("button[value=continue]").await;
    let text = b.wait_text("Found zero data rows in the file").await;
    assert!(text.contains("step 1 of 3"), "{text}");

    // An answer `config new` refuses is refused here, with its words, on its step.
    b.fill("input[name=id]", "Bad Id!").await;
    b.click("button[value=continue]").await;
    let text = b
        .wait_text("1 to 64 lowercase letters, digits and `-`")
        .await;
    assert!(text.contains("step 1 of 3"), "{text}");
    b.close().await;
}

#[tokio::test]
async fn an_access_key_the_bucket_refuses_is_named_as_moengage_does() {
    // A moto that checks access keys (as the preview API's test of this message): the
    // console runs with its admin key; the import's own key is not valid there.
    let endpoint = s3imports_tests::start_moto_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", "3")]);
    let (key, secret) = s3imports_tests::moto_admin_key(&endpoint).await;
    let sdk = s3imports_tests::sdk_config_with(&endpoint, &key, &secret);
    let env = TestEnv::with_sdk(endpoint, sdk).await;
    let bucket = env.scoped("acme-exports");
    env.bucket(&bucket).await;
    env.put_object(
        &bucket,
        "keyed/registered_user_data_20261127.csv",
        "ID,Age\nu1,30\n",
    )
    .await;
    let stored = env
        .put_secret("bad/secret", "not-the-secret", &["keyed"])
        .await;
    let console = ConsoleServer::start_with(
        &env,
        &[
            ("AWS_ACCESS_KEY_ID", &key),
            ("AWS_SECRET_ACCESS_KEY", &secret),
        ],
    );
    let b = Browser::start().await;
    b.goto(&console.url).await;
    step_one(&b, "keyed", &bucket, "keyed").await;
    b.select_live("select[name=credentials]", "access_key")
        .await;
    b.fill("input[name=access_key_id]", "AKIAIOSFODNN7EXAMPLE")
        .await;
    b.fill("input[name=secret_access_key_ref]", &stored).await;
    b.click("button[value=continue]").await;
    let text = b.wait_text("Given S3 Access Key is not valid").await;
    assert!(text.contains("step 1 of 3"), "{text}");
    // The secret's value is never on the page; its reference is what was typed.
    assert!(!b.client.source().await.unwrap().contains("not-the-secret"));
    b.close().await;
}

#[tokio::test]
async fn a_run_its_files_reasons_report_and_the_actions() {
    let env = TestEnv::new().await;
    let bucket = env.scoped("acme-exports");
    env.bucket(&bucket).await;
    // A partial file (a bad age) and a failed one (no ID column).
    env.put_object(
        &bucket,
        "users/registered_user_data_20261127.csv",
        "ID,Age\nu1,30\nu2,abc\n",
    )
    .await;
    env.put_object(
        &bucket,
        "users/registered_user_data_20261128.csv",
        "Name\nx\n",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = users_config(
        &env,
        "web",
        "users",
        json!({"segment": {"name": "Web VIPs"}, "schedule": {"type": "hourly", "minute": 0}}),
    );
    let path = write_json(dir.path(), "web.json", &config);
    assert_eq!(s3imports(&env, &["config", "put", &path]).code, 0);
    let tick = s3imports(&env, &["tick", "--now", "2026-12-31T10:00:00Z"]);
    assert_eq!(tick.code, 0, "{}{}", tick.stdout, tick.stderr);

    let console = ConsoleServer::start(&env);
    let b = Browser::start().await;
    b.goto(&console.url).await;
    let text = b.wait_text("Users web").await;
    assert!(text.contains("hourly") && text.contains("active"), "{text}");
    b.screenshot("imports").await;
    b.click("a[href='/imports/web']").await;
    let text = b.wait_text("Partial Success").await;
    assert!(
        text.contains("Failed") && text.contains("1 rows imported"),
        "{text}"
    );
    // The failed file's reason: its status's title (hover), and shown on click.
    let summary = b
        .find("tr:has(code) details.reason summary[title*='ID']")
        .await;
    let title = summary.attr("title").await.unwrap().unwrap_or_default();
    assert!(title.contains("ID"), "{title}");
    summary.click().await.unwrap();
    let reason = b.find("details.reason[open] p").await.text().await.unwrap();
    assert_eq!(reason, title);
    assert!(
        !b.client
            .find_all(Locator::Css("figure.chart rect.ok"))
            .await
            .unwrap()
            .is_empty()
    );
    b.screenshot("import").await;

    // The report: its first rows, and the whole CSV to download.
    b.click("a[href*='/report?file=']").await;
    let text = b.wait_text("failed row").await;
    assert!(text.contains("abc") && text.contains("Age"), "{text}");
    b.screenshot("report").await;
    let download = b
        .find("a[href*='report.csv']")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let cookie = cookie_header(&console);
    let (status, csv) = raw_http(
        &console.base,
        &format!(
            "GET {download} HTTP/1.1\r\nHost: {}\r\n{cookie}",
            host(&console)
        ),
        "",
    );
    assert_eq!(status, 200);
    assert!(csv.contains("abc"), "{csv}");

    // Run now, confirmed; and again at once: the API's refusal.
    b.goto(&format!("{}/imports/web", console.base)).await;
    b.click("form[action='/imports/web/confirm'] button").await;
    b.wait_text("Start a run of `web` now").await;
    b.click("form[action='/imports/web/act'] button").await;
    let text = b.wait_text("started by").await;
    assert!(text.contains("new file(s) queued"), "{text}");
    b.goto(&format!("{}/imports/web", console.base)).await;
    b.click("form[action='/imports/web/confirm'] button").await;
    b.click("form[action='/imports/web/act'] button").await;
    let text = b.wait_text("Refused").await;
    assert!(text.contains("one run by hand per 5 minutes"), "{text}");
    b.screenshot("run-now-refused").await;

    // Replay a file, with a reason.
    b.goto(&format!("{}/imports/web", console.base)).await;
    let replay = b.find("details.replay summary").await;
    replay.click().await.unwrap();
    b.fill("details.replay[open] input[name=reason]", "fixed the ages")
        .await;
    b.click("details.replay[open] button").await;
    b.wait_text("Replay `users/registered_user_data_2026112")
        .await;
    b.click("form[action='/imports/web/act'] button").await;
    let text = b.wait_text("replays").await;
    assert!(
        text.contains("users/registered_user_data_2026112"),
        "{text}"
    );

    // A dry run of the newest file: read here (a local emulator), nothing written.
    b.goto(&format!("{}/imports/web", console.base)).await;
    b.click("form:has(input[value='dry-run']) button").await;
    b.click("form[action='/imports/web/act'] button").await;
    let text = b.wait_text("rows read").await;
    assert!(
        text.contains("registered_user_data_20261128.csv") && text.contains("Nothing was written"),
        "{text}"
    );
    b.screenshot("dry-run").await;

    // The segment the import feeds, with its member.
    b.click("a[href='/segments']").await;
    b.wait_text("Web VIPs").await;
    b.click("a[href='/segments/Web%20VIPs']").await;
    let text = b.wait_text("Members").await;
    assert!(text.contains("u1"), "{text}");
    b.screenshot("segment").await;
    b.click("form[action='/segments/Web%20VIPs/confirm'] button")
        .await;
    b.click("form[action='/segments/Web%20VIPs/act'] button")
        .await;
    b.wait_text("Segment Web VIPs is archived").await;

    // Archive, then unarchive.
    b.goto(&format!("{}/imports/web", console.base)).await;
    b.click("form:has(input[value='archive']) button").await;
    b.click("form[action='/imports/web/act'] button").await;
    b.wait_text("Import web archived").await;
    b.goto(&format!("{}/", console.base)).await;
    assert!(!b.wait_text("Imports").await.contains("Users web"));
    b.goto(&format!("{}/?archived=1", console.base)).await;
    b.wait_text("Users web").await;
    b.goto(&format!("{}/imports/web", console.base)).await;
    b.click("form:has(input[value='unarchive']) button").await;
    b.click("form[action='/imports/web/act'] button").await;
    b.wait_text("is active again").await;

    // Edit: a problem is named by its field and nothing is stored; a good edit is.
    b.goto(&format!("{}/imports/web/edit", console.base)).await;
    let text = b
        .find("textarea[name=config]")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    let mut edited: serde_json::Value = serde_json::from_str(&text).unwrap();
    edited["schedule"] = json!({"type": "hourly", "minute": 75});
    b.fill("textarea[name=config]", &edited.to_string()).await;
    b.click("form[action='/imports/web/edit'] button").await;
    let problem = b.find("p.notice.refused").await.text().await.unwrap();
    assert!(problem.contains("minute"), "{problem}");
    assert_eq!(
        config_item(&env, "web").await.unwrap()["config"]["schedule"]["minute"],
        0
    );
    edited["schedule"] = json!({"type": "hourly", "minute": 30});
    edited["name"] = json!("Users on the web");
    b.fill("textarea[name=config]", &edited.to_string()).await;
    b.click("form[action='/imports/web/edit'] button").await;
    b.wait_text("Import web updated").await;
    let item = config_item(&env, "web").await.unwrap();
    assert_eq!(item["config"]["name"], "Users on the web");
    assert_eq!(item["config"]["schedule"]["minute"], 30);
    b.close().await;
}

/// Only the console's own script is on the page, and no alert opened.
async fn nothing_ran(b: &Browser) {
    let scripts = b.client.find_all(Locator::Css("script")).await.unwrap();
    assert_eq!(scripts.len(), 1);
    assert!(b.client.get_alert_text().await.is_err(), "no alert opened");
}

fn host(console: &ConsoleServer) -> String {
    console.base.trim_start_matches("http://").to_string()
}

fn cookie_header(console: &ConsoleServer) -> String {
    let port = host(console)
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let token = console.url.rsplit("token=").next().unwrap_or_default();
    format!("Cookie: s3imports_console_{port}={token}")
}

#[tokio::test]
async fn only_the_token_holder_gets_in_and_hostile_names_stay_text() {
    let env = TestEnv::new().await;
    let bucket = env.scoped("acme-exports");
    env.bucket(&bucket).await;
    env.put_object(
        &bucket,
        "odd/registered_user_data_20261127.csv",
        "ID,<script>alert('column')</script>\nu1,x\n",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = users_config(&env, "odd", "odd", json!({}));
    config["name"] = json!("<script>alert('name')</script>");
    let path = write_json(dir.path(), "odd.json", &config);
    assert_eq!(s3imports(&env, &["config", "put", &path]).code, 0);
    let console = ConsoleServer::start(&env);
    let host = host(&console);
    let cookie = cookie_header(&console);

    // No token, a wrong one, a forged Host, a POST without the CSRF value or from
    // another origin: all refused.
    let (status, body) = raw_http(
        &console.base,
        &format!("GET / HTTP/1.1\r\nHost: {host}"),
        "",
    );
    assert_eq!(status, 403, "{body}");
    let (status, _) = raw_http(
        &console.base,
        &format!("GET /?token=0123 HTTP/1.1\r\nHost: {host}"),
        "",
    );
    assert_eq!(status, 403);
    let (status, _) = raw_http(
        &console.base,
        &format!("GET / HTTP/1.1\r\nHost: attacker.example:80\r\n{cookie}"),
        "",
    );
    assert_eq!(status, 421);
    let post = |extra: &str, body: &str| {
        raw_http(
            &console.base,
            &format!(
                "POST /imports/odd/act HTTP/1.1\r\nHost: {host}\r\n{cookie}\r\nContent-Type: application/x-www-form-urlencoded{extra}"
            ),
            body,
        )
    };
    assert_eq!(post("", "action=archive").0, 403);
    assert_eq!(post("", "action=archive&csrf=forged").0, 403);
    let (status, page) = raw_http(
        &console.base,
        &format!("GET / HTTP/1.1\r\nHost: {host}\r\n{cookie}"),
        "",
    );
    assert_eq!(status, 200, "{page}");
    assert_eq!(config_item(&env, "odd").await.unwrap()["status"], "active");

    // With the printed address: the cookie, then every page. Hostile names are text.
    let b = Browser::start().await;
    b.goto(&console.url).await;
    let text = b.wait_text("<script>alert('name')</script>").await;
    assert!(
        !b.url().await.contains("token="),
        "the token leaves the address bar"
    );
    assert!(text.contains("Users") || text.contains("odd"));
    nothing_ran(&b).await;
    let page = b.client.source().await.unwrap();
    assert!(!page.contains("<script>alert"), "escaped in the HTML");

    b.goto(&format!("{}/imports/odd", console.base)).await;
    b.click("form:has(input[value='archive']) button").await;
    let form_csrf = b
        .find("form[action='/imports/odd/act'] input[name=csrf]")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    let (status, _) = post(
        "\r\nOrigin: http://attacker.example",
        &format!("action=archive&csrf={form_csrf}"),
    );
    assert_eq!(status, 403);
    assert_eq!(config_item(&env, "odd").await.unwrap()["status"], "active");

    // A hostile column name in the set-up's preview: text too.
    step_one(&b, "odd-two", &bucket, "odd").await;
    b.click("button[value=continue]").await;
    let text = b.wait_text("step 2 of 3").await;
    assert!(text.contains("<script>alert('column')</script>"), "{text}");
    nothing_ran(&b).await;
    b.close().await;
}
