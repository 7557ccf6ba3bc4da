//! One trace follows a federated join (issue 8): the JoinInvite call on B, the VerifyUser job
//! through B's bus to federation-sync, the signed call to A, and A's answer, exported over OTLP
//! to a small receiver run by the test, which checks the span tree.

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};

use super::*;

/// A span as the receiver keeps it.
#[derive(Debug, Clone)]
struct Span {
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    name: String,
}

#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().expect("lock");
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans.into_iter().map(|s| Span {
                    trace_id: s.trace_id,
                    span_id: s.span_id,
                    parent_span_id: s.parent_span_id,
                    name: s.name,
                }));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// The trace holding a span named like `root`, a federation job, and a span named like `leaf`.
fn joined_trace(spans: &[Span], root: &str, leaf: &str) -> Option<Vec<Span>> {
    let roots = spans.iter().filter(|s| s.name.contains(root));
    roots.into_iter().find_map(|r| {
        let trace: Vec<Span> = spans
            .iter()
            .filter(|s| s.trace_id == r.trace_id)
            .cloned()
            .collect();
        let has = |name: &str| trace.iter().any(|s| s.name.contains(name));
        (has("federation.job") && has(leaf)).then_some(trace)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_federated_join_is_one_trace_across_both_servers() {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let service = TraceServiceServer::new(receiver.clone());
    tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await;
    });
    let env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), endpoint),
        // Export soon after each span ends, not every five seconds.
        ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "200".to_owned()),
    ];
    let a = Homeserver::start_with_env(Backend::Embedded, &[], env.clone());
    let b = Homeserver::start_with_env(Backend::Embedded, &[], env);
    let alice = user(&a.origin, "laptop");
    alice
        .login(&a.origin, None, "")
        .await
        .expect("alice at home");
    let carol = user(&b.origin, "desk");
    let (_, _, link) = guild_with_invite(&carol, &b.origin).await;
    alice
        .join_invite(&link, None)
        .await
        .expect("alice joins on B");
    wait_for_account(&alice, &b.origin, Duration::from_secs(30), |acc| {
        acc.verification() == Verification::Verified
    })
    .await;

    let start = Instant::now();
    let trace = loop {
        let spans = receiver.spans.lock().expect("lock").clone();
        if let Some(trace) = joined_trace(&spans, "JoinInvite", "VerifyUser") {
            break trace;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no trace joins B's JoinInvite to A's VerifyUser; spans: {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // One tree: a single root (B's JoinInvite call), every other span's parent in the trace.
    let ids: Vec<&Vec<u8>> = trace.iter().map(|s| &s.span_id).collect();
    let roots: Vec<&Span> = trace
        .iter()
        .filter(|s| s.parent_span_id.is_empty())
        .collect();
    assert_eq!(roots.len(), 1, "{trace:?}");
    assert!(roots[0].name.contains("JoinInvite"), "{trace:?}");
    for span in &trace {
        assert!(
            span.parent_span_id.is_empty() || ids.contains(&&span.parent_span_id),
            "{} has a parent outside the trace: {trace:?}",
            span.name
        );
    }
    // A's VerifyUser span descends from federation-sync's job span on B.
    let parent_of = |s: &Span| trace.iter().find(|p| p.span_id == s.parent_span_id);
    let verify = trace
        .iter()
        .find(|s| s.name.contains("VerifyUser"))
        .expect("A's span");
    let mut ancestor = parent_of(verify);
    let mut through_job = false;
    while let Some(span) = ancestor {
        through_job |= span.name == "federation.job";
        ancestor = parent_of(span);
    }
    assert!(
        through_job,
        "A's span is not under the federation job: {trace:?}"
    );
    eprintln!(
        "federated join trace: {:?}",
        trace.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
}
