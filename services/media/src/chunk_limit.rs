//! A ceiling on upload chunks held in memory. A chunk (up to the largest chunk size) is read
//! whole before its handler runs, so limits inside the handler come too late: this layer makes
//! a chunk call wait for a place before its body is read. Waiting bodies stay in HTTP/2 flow
//! control, unread.

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use futures::future::BoxFuture;
use tokio::sync::Semaphore;
use tonic::{body::Body, server::NamedService};

/// Chunk calls of this process in their handlers at once: with 8 MiB chunks, 128 MiB.
pub const CHUNKS_IN_FLIGHT: usize = 16;

const CHUNK_PATH: &str = "/mzchat.media.v1.MediaService/UploadChunk";

#[derive(Clone)]
pub struct ChunkLimit<S> {
    inner: S,
    places: Arc<Semaphore>,
}

impl<S> ChunkLimit<S> {
    pub fn new(inner: S, places: usize) -> Self {
        Self {
            inner,
            places: Arc::new(Semaphore::new(places)),
        }
    }
}

impl<S: NamedService> NamedService for ChunkLimit<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> tower::Service<http::Request<Body>> for ChunkLimit<S>
where
    S: tower::Service<http::Request<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
{
    type Response = S::Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<S::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The ready service answers this call; a fresh clone waits for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if request.uri().path() != CHUNK_PATH {
            return Box::pin(inner.call(request));
        }
        let places = self.places.clone();
        Box::pin(async move {
            // Never closed, so acquiring only waits.
            let _place = places.acquire_owned().await;
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::atomic::{AtomicUsize, Ordering},
        time::Duration,
    };

    use tower::{Service, ServiceExt};

    use super::*;

    /// How many calls were inside the service at most, for `calls` calls at once to `path`.
    async fn most_at_once(path: &'static str, calls: usize, places: usize) -> usize {
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (i, m) = (inside.clone(), most.clone());
        let inner = tower::service_fn(move |_: http::Request<Body>| {
            let (inside, most) = (i.clone(), m.clone());
            async move {
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, Infallible>(http::Response::new(Body::empty()))
            }
        });
        let limited = ChunkLimit::new(inner, places);
        let calls = (0..calls).map(|_| {
            let mut service = limited.clone();
            async move {
                let request = http::Request::builder()
                    .uri(path)
                    .body(Body::empty())
                    .expect("request");
                service.ready().await.expect("ready");
                service.call(request).await.expect("answered")
            }
        });
        futures::future::join_all(calls).await;
        most.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn chunk_calls_wait_for_a_place_and_others_do_not() {
        assert_eq!(most_at_once(CHUNK_PATH, 30, 4).await, 4);
        let other = "/mzchat.media.v1.MediaService/GetFile";
        assert!(most_at_once(other, 30, 4).await > 4);
    }
}
