//! A request body that may pause at most `ROSTER_BODY_READ_TIMEOUT_SECS`
//! between frames. Unlike tower-http's `RequestBodyTimeout`, which starts a
//! timer for every frame, the timer starts only when a frame is not there
//! yet: a body that came with its headers, as nearly every GraphQL request
//! does, costs no timer at all.
use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

/// What a body that paused too long ends with.
#[derive(Debug)]
pub struct BodyTimedOut;

impl fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `http::graphql::Rejection` recognises it by "not received within".
        f.write_str("the request body was not received within ROSTER_BODY_READ_TIMEOUT_SECS")
    }
}

impl std::error::Error for BodyTimedOut {}

/// `body`, which fails with [`BodyTimedOut`] once it has kept the reader
/// waiting `patience` for a frame.
pub struct PatientBody<B> {
    body: B,
    patience: Duration,
    waiting: Option<Pin<Box<Sleep>>>,
}

impl<B> PatientBody<B> {
    pub fn new(body: B, patience: Duration) -> Self {
        Self {
            body,
            patience,
            waiting: None,
        }
    }
}

impl<B> Body for PatientBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            this.waiting = None;
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        let patience = this.patience;
        let waiting = this
            .waiting
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(patience)));
        match waiting.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
