//! Who may use the console: the person who started it. It listens on 127.0.0.1 only,
//! so other machines cannot reach it; on this machine, another user or a web page open
//! in the same browser could. So:
//! - every start makes a random token, printed in the address; opening that address
//!   sets it as a cookie (`HttpOnly`, `SameSite=Strict`), and every request without it
//!   is refused;
//! - the `Host` must be this console's own address, so a hostile page cannot reach it
//!   under a name of its own (DNS rebinding);
//! - every change is a POST whose form carries this start's CSRF value, and a POST from
//!   another origin is refused whatever it carries;
//! - every page is sent with a content security policy that runs only the console's
//!   own script and style, and may not be framed.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore as _;

use super::Shared;
use super::page;

/// The largest form the console takes (a pasted mapping file is the biggest).
pub const FORM_MAX_BYTES: usize = 2 * 1024 * 1024;

/// This start's secrets: the token that lets a browser in, and the CSRF value forms
/// carry.
pub struct Guard {
    port: u16,
    token: String,
    csrf: String,
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Equal without telling how much of it matched by how long it took.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Guard {
    pub fn new(port: u16) -> Self {
        Self {
            port,
            token: random_hex(),
            csrf: random_hex(),
        }
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// The value every form posts back.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// The cookie's name: per port, since browsers share cookies across a host's ports.
    fn cookie(&self) -> String {
        format!("s3imports_console_{}", self.port)
    }

    fn own_host(&self, host: &str) -> bool {
        host == format!("127.0.0.1:{}", self.port) || host == format!("localhost:{}", self.port)
    }

    fn has_cookie(&self, request: &Request) -> bool {
        let name = self.cookie();
        request
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .any(|(k, v)| k == name && same(v, &self.token))
    }
}

fn refuse(status: StatusCode, title: &str, why: &str) -> Response {
    (status, page::bare(title, why)).into_response()
}

/// Checks every request (see the module's note) and adds the headers every answer has.
pub async fn check(State(console): State<Shared>, request: Request, next: Next) -> Response {
    let guard = &console.guard;
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !guard.own_host(host) {
        return secure(refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "Wrong address",
            "The console answers only at the address it printed (127.0.0.1 and its port).",
        ));
    }
    // The printed address: its token becomes the cookie, and leaves the address bar.
    let token = request.uri().query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    });
    if let Some(token) = token {
        if !same(&token, guard.token()) {
            return secure(refuse(
                StatusCode::FORBIDDEN,
                "Not this console's token",
                "This address's token is not the one the console printed when it started (it changes every start). Open the address it printed.",
            ));
        }
        let cookie = format!(
            "{}={}; HttpOnly; SameSite=Strict; Path=/",
            guard.cookie(),
            guard.token()
        );
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SEE_OTHER;
        if let (Ok(c), Ok(l)) = (
            HeaderValue::from_str(&cookie),
            HeaderValue::from_str(request.uri().path()),
        ) {
            response.headers_mut().insert(header::SET_COOKIE, c);
            response.headers_mut().insert(header::LOCATION, l);
        }
        return secure(response);
    }
    if !guard.has_cookie(&request) {
        return secure(refuse(
            StatusCode::FORBIDDEN,
            "Open the console's own address",
            "This console lets in only the browser that opened the address it printed when it started (with its token). Open that address, or start it again with `s3imports console`.",
        ));
    }
    let request = match *request.method() {
        Method::GET | Method::HEAD => request,
        Method::POST => match checked_post(guard, request).await {
            Ok(r) => r,
            Err(response) => return secure(response),
        },
        _ => {
            return secure(refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                "Not allowed",
                "The console takes GET and POST only.",
            ));
        }
    };
    secure(next.run(request).await)
}

/// A POST from this console's own page: same origin, and its form carries the CSRF
/// value. The body is read here (bounded) and handed on unchanged.
async fn checked_post(guard: &Guard, request: Request) -> Result<Request, Response> {
    let origin_ok = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .is_none_or(|o| {
            o.strip_prefix("http://")
                .is_some_and(|host| guard.own_host(host))
        });
    let cross_site = request
        .headers()
        .get("sec-fetch-site")
        .and_then(|s| s.to_str().ok())
        .is_some_and(|s| s != "same-origin" && s != "none");
    if !origin_ok || cross_site {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "Refused",
            "A change must come from the console's own page.",
        ));
    }
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, FORM_MAX_BYTES).await.map_err(|_| {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Too large",
            "The form is larger than the console takes (2 MiB).",
        )
    })?;
    let csrf_ok = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "csrf")
        .is_some_and(|(_, v)| same(&v, guard.csrf()));
    if !csrf_ok {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "Refused",
            "The form did not come from this console's page (its CSRF value is missing or from an earlier start). Go back, reload the page and try again.",
        ));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// The headers every answer carries.
fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_compared_whole() {
        let (a, b) = (Guard::new(1), Guard::new(1));
        assert_ne!(a.token(), b.token());
        assert_eq!(a.token().len(), 64);
        assert!(same(a.token(), a.token()));
        assert!(!same(a.token(), &a.token()[..63]));
        assert!(!same(a.token(), b.token()));
        assert!(a.own_host("127.0.0.1:1") && !a.own_host("evil.example:1"));
    }
}
