//! A mocked API server for tests of the IO stages: a kube Client whose requests go to a script
//! of expected requests (method, path, checks on the body) with canned answers. Any request
//! out of order, missing or extra fails the test.

use std::time::Duration;

use http::{Method, Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;
type Check = Box<dyn Fn(&Value) + Send>;

/// A client and the server that answers it.
pub fn pair() -> (Client, ApiServer) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), ApiServer { handle })
}

pub struct ApiServer {
    handle: Handle,
}

enum Reply {
    Json(u16, Value),
    /// The request's body back, with these fields merged in (e.g. a status).
    Echo(Value),
}

/// One expected request and its answer.
pub struct Expect {
    method: Method,
    path: String,
    checks: Vec<Check>,
    reply: Reply,
}

impl Expect {
    fn new(method: Method, path: impl Into<String>) -> Self {
        Expect {
            method,
            path: path.into(),
            checks: Vec::new(),
            reply: Reply::Echo(Value::Null),
        }
    }

    pub fn get(path: impl Into<String>) -> Self {
        Expect::new(Method::GET, path)
    }

    pub fn post(path: impl Into<String>) -> Self {
        Expect::new(Method::POST, path)
    }

    pub fn put(path: impl Into<String>) -> Self {
        Expect::new(Method::PUT, path)
    }

    /// A server-side apply by the operator's field manager, answered with the applied object
    /// plus `extra` (e.g. `{"status": ...}`).
    pub fn apply(path: impl Into<String>, extra: Value) -> Self {
        let mut expect = Expect::new(Method::PATCH, path);
        expect.reply = Reply::Echo(extra);
        expect
    }

    pub fn patch(path: impl Into<String>) -> Self {
        Expect::new(Method::PATCH, path)
    }

    pub fn not_found(self) -> Self {
        self.reply(
            404,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}),
        )
    }

    pub fn reply(mut self, code: u16, body: Value) -> Self {
        self.reply = Reply::Json(code, body);
        self
    }

    pub fn check(mut self, check: impl Fn(&Value) + Send + 'static) -> Self {
        self.checks.push(Box::new(check));
        self
    }
}

impl ApiServer {
    /// Answers `script` in order, then fails on any further request.
    pub fn run(mut self, script: Vec<Expect>) -> JoinHandle<()> {
        tokio::spawn(async move {
            for (i, expect) in script.into_iter().enumerate() {
                let what = format!("request {i}: {} {}", expect.method, expect.path);
                let (request, send) = self
                    .handle
                    .next_request()
                    .await
                    .unwrap_or_else(|| panic!("{what} never came"));
                let seen = format!("{} {}", request.method(), request.uri().path());
                assert_eq!(seen, format!("{} {}", expect.method, expect.path), "{what}");
                let apply_patch = request
                    .headers()
                    .get(http::header::CONTENT_TYPE)
                    .is_some_and(|t| t == "application/apply-patch+yaml");
                if apply_patch {
                    let query = request.uri().query().unwrap_or_default();
                    assert!(
                        query.contains("fieldManager=mzchat-operator")
                            && query.contains("force=true"),
                        "{what}: applied without the operator's field manager and force: {query}"
                    );
                }
                let bytes = request
                    .into_body()
                    .collect_bytes()
                    .await
                    .expect("a request body");
                let body: Value = if bytes.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(&bytes).expect("a JSON request body")
                };
                for check in &expect.checks {
                    check(&body);
                }
                let (code, answer) = match expect.reply {
                    Reply::Json(code, answer) => (code, answer),
                    Reply::Echo(extra) => {
                        let mut answer = body;
                        if let (Value::Object(answer), Value::Object(extra)) = (&mut answer, extra)
                        {
                            answer.extend(extra);
                        }
                        (200, answer)
                    }
                };
                let response = Response::builder()
                    .status(code)
                    .body(Body::from(serde_json::to_vec(&answer).expect("JSON")))
                    .expect("a response");
                send.send_response(response);
            }
            if let Some((request, _)) = self.handle.next_request().await {
                panic!(
                    "unexpected request: {} {}",
                    request.method(),
                    request.uri().path()
                );
            }
        })
    }
}

/// Waits for the server to have answered its whole script (and seen no more requests once
/// every client is dropped).
pub async fn verify(server: JoinHandle<()>) {
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the api server finished its script in time")
        .expect("the api server saw the expected requests");
}
