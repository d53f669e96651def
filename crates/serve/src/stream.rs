//! Bodies streamed between hyper's async side and the store's blocking
//! calls through small bounded queues, so that a large `load` or `save`
//! never sits in memory: [`BodyReader`] (a request body as `io::Read`),
//! [`ChannelWriter`] and [`ChannelBody`] (an `io::Write` whose bytes become
//! the response body).

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::mpsc;

use crate::BODY_TIMEOUT;

/// Chunks queued between the two sides: a response's are [`CHUNK`] bytes,
/// a request's as hyper reads them (at most its 64 KiB buffer).
const QUEUE: usize = 8;
/// The size of the chunks a [`ChannelWriter`] sends.
const CHUNK: usize = 256 * 1024;

/// A chunk, or the error that ends the stream.
type Chunk = Result<Bytes, io::Error>;

/// Feeds a request body into a queue read by a [`BodyReader`] on a
/// blocking thread; stops when the body ends, fails, stalls for
/// [`BODY_TIMEOUT`] or the reader goes away.
pub(crate) async fn pump_body(mut body: Incoming, queue: mpsc::Sender<Chunk>) {
    loop {
        let frame = match tokio::time::timeout(BODY_TIMEOUT, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            Ok(None) => return,
            Ok(Some(Err(e))) => {
                let _ = queue.send(Err(io::Error::other(e))).await;
                return;
            }
            Err(_) => {
                let _ = queue
                    .send(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the request body stalled for {} s", BODY_TIMEOUT.as_secs()),
                    )))
                    .await;
                return;
            }
        };
        if let Ok(data) = frame.into_data()
            && queue.send(Ok(data)).await.is_err()
        {
            return;
        }
    }
}

/// A request body as `io::Read`, for a blocking thread.
pub(crate) struct BodyReader {
    queue: mpsc::Receiver<Chunk>,
    current: Bytes,
}

impl BodyReader {
    /// The reader of what [`pump_body`] sends on the other end.
    pub fn new(queue: mpsc::Receiver<Chunk>) -> BodyReader {
        BodyReader {
            queue,
            current: Bytes::new(),
        }
    }

    /// A queue for [`pump_body`] and its reader.
    pub fn channel() -> (mpsc::Sender<Chunk>, BodyReader) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        (sender, BodyReader::new(receiver))
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.queue.blocking_recv() {
                None => return Ok(0),
                Some(chunk) => self.current = chunk?,
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

/// An `io::Write` on a blocking thread whose bytes go, in [`CHUNK`]s, to
/// a [`ChannelBody`]; a write fails once the client has gone.
pub(crate) struct ChannelWriter {
    queue: mpsc::Sender<Chunk>,
    buffer: Vec<u8>,
}

/// A queue from a [`ChannelWriter`] to a [`ChannelBody`].
pub(crate) fn response_channel() -> (mpsc::Sender<Chunk>, mpsc::Receiver<Chunk>) {
    mpsc::channel(QUEUE)
}

impl ChannelWriter {
    /// A writer into `queue`.
    pub fn new(queue: mpsc::Sender<Chunk>) -> ChannelWriter {
        ChannelWriter {
            queue,
            buffer: Vec::with_capacity(CHUNK),
        }
    }

    fn send_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK),
        ));
        self.queue
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK - self.buffer.len());
        self.buffer.extend_from_slice(&buf[..n]);
        if self.buffer.len() == CHUNK {
            self.send_buffer()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffer()
    }
}

/// A response body read from a queue: a first chunk already taken from it,
/// then the rest; an error in the queue aborts the response (the client
/// sees a truncated body, never a complete-looking one).
pub(crate) struct ChannelBody {
    first: Option<Bytes>,
    queue: mpsc::Receiver<Chunk>,
}

impl ChannelBody {
    /// The body of `first` and then `queue`.
    pub fn new(first: Option<Bytes>, queue: mpsc::Receiver<Chunk>) -> ChannelBody {
        ChannelBody { first, queue }
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        self.queue
            .poll_recv(cx)
            .map(|chunk| chunk.map(|chunk| chunk.map(Frame::data)))
    }
}
