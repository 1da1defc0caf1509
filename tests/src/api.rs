//! The preview API as API Gateway calls it, held to its payload limits.

/// The IAM principal API Gateway's IAM authorization names on [`api_request`]s.
pub const API_CALLER: &str = "arn:aws:iam::123456789012:user/operator";

/// A request as API Gateway's HTTP API (payload v2) hands it to the preview Lambda; `target` is a path with an optional `?query`.
pub fn api_request(
    method: &str,
    target: &str,
    body: Option<&serde_json::Value>,
) -> lambda_http::Request {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let event = serde_json::json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": "r1",
            "authorizer": {"iam": {
                "accessKey": "AKIATEST",
                "accountId": "123456789012",
                "callerId": "AIDATEST",
                "userArn": API_CALLER,
                "userId": "AIDATEST"
            }},
            "routeKey": format!("{method} {path}"),
            "stage": "$default",
            "time": "28/Nov/2026:09:00:00 +0000",
            "timeEpoch": 1_795_856_400_000_i64
        },
        "body": body.map(serde_json::Value::to_string),
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).unwrap_or_else(|e| panic!("API event: {e}"))
}

/// API Gateway's HTTP API payload limit.
/// https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html
pub const API_GATEWAY_MAX_PAYLOAD: usize = 10 << 20;

/// Lambda's limit on a synchronous invocation's response (and a function's response
/// to the runtime API).
/// https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
pub const LAMBDA_MAX_RESPONSE: usize = 6 << 20;

/// What the preview API answered: status, JSON body (Null when none) and headers.
pub struct ApiAnswer {
    pub status: u16,
    pub body: serde_json::Value,
    pub headers: lambda_http::http::HeaderMap,
}

/// Sends a request through the preview Lambda's handler, as API Gateway would.
pub async fn api_call(
    api: &s3imports_preview::Api,
    method: &str,
    target: &str,
    body: Option<&serde_json::Value>,
) -> ApiAnswer {
    let sent = body.map_or(0, |b| b.to_string().len());
    assert!(
        sent <= API_GATEWAY_MAX_PAYLOAD,
        "API Gateway refuses a {sent}-byte request to {target} (its payload limit is 10 MB)"
    );
    let response = s3imports_preview::handler(api, api_request(method, target, body))
        .await
        .unwrap_or_else(|e| panic!("handler: {e}"));
    let bytes: &[u8] = match response.body() {
        lambda_http::Body::Text(t) => t.as_bytes(),
        lambda_http::Body::Binary(b) => b,
        _ => &[],
    };
    // The response as the runtime returns it to API Gateway (JSON, headers included,
    // a binary body base64-encoded) must be within Lambda's 6 MB.
    let returned = bytes.len() * 4 / 3
        + response
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 8)
            .sum::<usize>();
    assert!(
        returned <= LAMBDA_MAX_RESPONSE,
        "Lambda refuses a {returned}-byte response of {method} {target} (its limit is 6 MB)"
    );
    ApiAnswer {
        status: response.status().as_u16(),
        body: serde_json::from_slice(bytes).unwrap_or(serde_json::Value::Null),
        headers: response.headers().clone(),
    }
}
