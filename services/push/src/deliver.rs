//! One push, POSTed to one endpoint (RFC 8030 `TTL` and `Urgency` headers). The connection goes
//! to an address the endpoint guard vetted, never to a name resolved again; redirects are not
//! followed; the whole exchange has a deadline and the answer's size is bounded.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::endpoint::{Endpoint, EndpointError, EndpointGuard};

const TIMEOUT: Duration = Duration::from_secs(5);
/// Distributors answer with little; anything longer is cut off.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// What a push service answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 2xx: accepted.
    Delivered(u16),
    /// 404 or 410: the endpoint is gone; forget it.
    Gone(u16),
    /// 429 or 5xx: try again later (after the Retry-After it gave, if any).
    Later {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// Any other status, redirects included: this push will not go.
    Refused(u16),
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error("cannot reach {0}: {1}")]
    Unreachable(String, String),
    #[error("{0} did not answer within 5 s")]
    Timeout(String),
    #[error(transparent)]
    Encryption(#[from] crate::webpush::EncryptError),
    #[error("FCM: {0}")]
    Fcm(String),
    #[error("this server has no FCM credentials")]
    NoFcm,
}

/// A push to send: the body is already encrypted (or an opaque notice).
pub struct Push<'a> {
    pub body: Bytes,
    pub encrypted: bool,
    /// Seconds the push service may keep it.
    pub ttl: u32,
    /// RFC 8030 urgency: very-low, low, normal or high.
    pub urgency: &'a str,
}

#[derive(Clone)]
pub struct Deliverer {
    guard: EndpointGuard,
    tls: TlsConnector,
}

fn tls_config() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A certificate the system store holds but rustls cannot parse is skipped.
        let _ = roots.add(cert);
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// An HTTP answer: its status, Retry-After, and (a bounded part of) its body.
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

impl Deliverer {
    pub fn new(guard: EndpointGuard) -> Self {
        Self {
            guard,
            tls: TlsConnector::from(Arc::new(tls_config())),
        }
    }

    pub async fn send(&self, url: &str, push: &Push<'_>) -> Result<Answer, DeliveryError> {
        let endpoint = self.guard.parse(url)?;
        let request = request(&endpoint, push)
            .map_err(|e| DeliveryError::Unreachable(endpoint.host.clone(), e.to_string()))?;
        let reply = self.post(&endpoint, request).await?;
        let code = reply.status;
        Ok(match code {
            200..=299 => Answer::Delivered(code),
            404 | 410 => Answer::Gone(code),
            429 | 500..=599 => Answer::Later {
                status: code,
                retry_after: reply.retry_after,
            },
            _ => Answer::Refused(code),
        })
    }

    /// One request to the endpoint, at an address the guard vetted, within the deadline
    /// (resolution included).
    pub async fn post(
        &self,
        endpoint: &Endpoint,
        request: http::Request<Full<Bytes>>,
    ) -> Result<Reply, DeliveryError> {
        let exchange = async {
            let addrs = self.guard.resolve(endpoint).await?;
            self.exchange(endpoint, &addrs, request).await
        };
        tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| DeliveryError::Timeout(endpoint.host.clone()))?
    }

    pub fn parse(&self, url: &str) -> Result<Endpoint, EndpointError> {
        self.guard.parse(url)
    }

    async fn connect(
        &self,
        endpoint: &Endpoint,
        addrs: &[SocketAddr],
    ) -> Result<TcpStream, DeliveryError> {
        let mut last = String::from("no address");
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Err(err) => last = err.to_string(),
            }
        }
        Err(DeliveryError::Unreachable(endpoint.host.clone(), last))
    }

    async fn exchange(
        &self,
        endpoint: &Endpoint,
        addrs: &[SocketAddr],
        request: http::Request<Full<Bytes>>,
    ) -> Result<Reply, DeliveryError> {
        let stream = self.connect(endpoint, addrs).await?;
        let unreachable = |e: &dyn std::fmt::Display| {
            DeliveryError::Unreachable(endpoint.host.clone(), e.to_string())
        };
        let response = if endpoint.https {
            let name = rustls::pki_types::ServerName::try_from(endpoint.host.clone())
                .map_err(|e| unreachable(&e))?;
            let tls = self
                .tls
                .connect(name, stream)
                .await
                .map_err(|e| unreachable(&e))?;
            send_on(TokioIo::new(tls), request).await
        } else {
            send_on(TokioIo::new(stream), request).await
        }
        .map_err(|e| unreachable(&e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // A bounded part of the answer; reading it lets the exchange complete cleanly.
        let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Ok(Reply {
            status,
            retry_after,
            body,
        })
    }
}

/// The Host header of a request to `endpoint`.
pub fn host_header(endpoint: &Endpoint) -> String {
    // IPv6 literals keep their brackets in the Host header.
    let name = if endpoint.host.contains(':') {
        format!("[{}]", endpoint.host)
    } else {
        endpoint.host.clone()
    };
    if endpoint.port == if endpoint.https { 443 } else { 80 } {
        name
    } else {
        format!("{name}:{}", endpoint.port)
    }
}

fn request(
    endpoint: &Endpoint,
    push: &Push<'_>,
) -> Result<http::Request<Full<Bytes>>, http::Error> {
    let mut builder = http::Request::post(endpoint.path.as_str())
        .header(http::header::HOST, host_header(endpoint))
        .header("TTL", push.ttl.to_string())
        .header("Urgency", push.urgency)
        .header(http::header::CONTENT_TYPE, "application/octet-stream");
    if push.encrypted {
        builder = builder.header(http::header::CONTENT_ENCODING, "aes128gcm");
    }
    builder.body(Full::new(push.body.clone()))
}

async fn send_on<IO>(
    io: IO,
    request: http::Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, hyper::Error>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    // The connection ends with this exchange (or with the deadline).
    tokio::spawn(async move {
        let _ = connection.await;
    });
    sender.send_request(request).await
}

#[cfg(test)]
mod tests {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    use super::*;

    /// A push service that answers one request with `response` and hands back what it got.
    async fn service(response: &'static str) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/up/device", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = stream.read(&mut buf).await.expect("read");
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= length || n == 0 {
                        break;
                    }
                }
            }
            stream.write_all(response.as_bytes()).await.expect("answer");
            String::from_utf8_lossy(&request).to_string()
        });
        (url, task)
    }

    fn push() -> Push<'static> {
        Push {
            body: Bytes::from_static(b"ciphertext"),
            encrypted: true,
            ttl: 600,
            urgency: "high",
        }
    }

    fn local() -> Deliverer {
        Deliverer::new(EndpointGuard::new(&["127.0.0.1".to_owned()]))
    }

    #[tokio::test]
    async fn a_push_is_posted_with_rfc_8030_headers() {
        let (url, got) = service("HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n").await;
        assert_eq!(
            local().send(&url, &push()).await.expect("sent"),
            Answer::Delivered(201)
        );
        let request = got.await.expect("request").to_ascii_lowercase();
        assert!(request.starts_with("post /up/device http/1.1"), "{request}");
        for header in [
            "ttl: 600",
            "urgency: high",
            "content-encoding: aes128gcm",
            "content-length: 10",
        ] {
            assert!(request.contains(header), "{header} in {request}");
        }
        assert!(request.ends_with("ciphertext"));
    }

    #[tokio::test]
    async fn answers_are_sorted_and_redirects_not_followed() {
        for (response, expected) in [
            (
                "HTTP/1.1 410 Gone\r\ncontent-length: 0\r\n\r\n",
                Answer::Gone(410),
            ),
            (
                "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
                Answer::Gone(404),
            ),
            (
                "HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\ncontent-length: 0\r\n\r\n",
                Answer::Later {
                    status: 429,
                    retry_after: Some(Duration::from_secs(7)),
                },
            ),
            (
                "HTTP/1.1 503 Unavailable\r\ncontent-length: 0\r\n\r\n",
                Answer::Later {
                    status: 503,
                    retry_after: None,
                },
            ),
            (
                "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:1/metadata\r\ncontent-length: 0\r\n\r\n",
                Answer::Refused(302),
            ),
        ] {
            let (url, _) = service(response).await;
            assert_eq!(
                local().send(&url, &push()).await.expect("answered"),
                expected
            );
        }
    }

    #[tokio::test]
    async fn private_endpoints_and_silent_services_fail_cleanly() {
        let (url, _) = service("HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n").await;
        let strict = Deliverer::new(EndpointGuard::default());
        assert!(matches!(
            strict.send(&url, &push()).await,
            Err(DeliveryError::Endpoint(EndpointError::NotHttps))
        ));
        let https = url.replace("http://", "https://");
        assert!(matches!(
            strict.send(&https, &push()).await,
            Err(DeliveryError::Endpoint(EndpointError::Internal(_)))
        ));
        // Accepts the connection and never answers.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let silent = format!("http://{}/up", listener.local_addr().expect("addr"));
        let _hold = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accept");
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(stream);
        });
        assert!(matches!(
            local().send(&silent, &push()).await,
            Err(DeliveryError::Timeout(_))
        ));
    }
}
