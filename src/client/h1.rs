//! A minimal HTTP/1.1 client connection for the perf hot path: the request
//! is written with one `write`, and the response is read and decoded
//! (`Content-Length`, `chunked`, or until close) in the calling task, so each
//! socket read is timestamped exactly once and no connection task or body
//! channel sits between the socket and the SSE scanner.
//!
//! Owns only what a benchmark needs from HTTP/1.1: status line, a few
//! headers (`Content-Type`, `Content-Length`, `Transfer-Encoding`,
//! `Connection`), keep-alive, and body framing. Anything else (TLS,
//! redirects, compression, `100-continue`, HTTP/2) is out of scope and goes
//! through the general client.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Read buffer size: small enough to keep memory per stream low, large
/// enough for a burst of SSE events in one read.
const READ_BUF: usize = 4 * 1024;
/// Longest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Longest chunk-size line (with extensions) accepted.
const MAX_CHUNK_LINE: usize = 4 * 1024;

/// The parts of a response head the client uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Status code.
    pub status: u16,
    /// `Content-Type` value.
    pub content_type: Option<String>,
    /// How the body is framed.
    pub framing: Framing,
    /// The server will close after this response.
    pub close: bool,
}

/// Body framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the connection closes.
    UntilClose,
}

/// Decoder state of a chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a size line.
    Size,
    /// Inside a chunk with this many bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last (zero) chunk: trailers until an empty line.
    Trailers,
}

/// One keep-alive connection.
pub struct H1Conn {
    stream: TcpStream,
    buf: BytesMut,
    /// False once the server said `Connection: close`, a body ended by close,
    /// or anything went wrong: the caller must open a new connection.
    reusable: bool,
    /// Body decoding state of the current response.
    framing: Framing,
    remaining: u64,
    chunk: Chunk,
    done: bool,
}

impl std::fmt::Debug for H1Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H1Conn")
            .field("reusable", &self.reusable)
            .finish_non_exhaustive()
    }
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl H1Conn {
    /// Connect (TCP_NODELAY).
    pub async fn connect(addr: SocketAddr) -> io::Result<H1Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(H1Conn {
            stream,
            buf: BytesMut::with_capacity(READ_BUF),
            reusable: true,
            framing: Framing::Length(0),
            remaining: 0,
            chunk: Chunk::Size,
            done: true,
        })
    }

    /// Whether another request may be sent on this connection.
    pub fn is_reusable(&self) -> bool {
        self.reusable && self.done
    }

    /// Write a whole request (head and body) with one write; returns the
    /// time the bytes were handed to the socket.
    pub async fn send(&mut self, request: &[u8]) -> io::Result<Instant> {
        // Leftover bytes from an earlier response mean the framing went wrong.
        if !self.buf.is_empty() {
            self.reusable = false;
            return Err(bad("unread bytes before a new request"));
        }
        let t = Instant::now();
        self.stream.write_all(request).await?;
        Ok(t)
    }

    /// Read more bytes; returns the read's time, or an error at EOF.
    async fn fill(&mut self) -> io::Result<Option<Instant>> {
        if self.buf.capacity() - self.buf.len() < 512 {
            self.buf.reserve(READ_BUF);
        }
        let n = self.stream.read_buf(&mut self.buf).await?;
        if n == 0 {
            return Ok(None);
        }
        Ok(Some(Instant::now()))
    }

    /// Read the response head.
    pub async fn read_head(&mut self) -> io::Result<Head> {
        loop {
            if let Some(end) = memchr::memmem::find(&self.buf, b"\r\n\r\n") {
                let head = parse_head(&self.buf[..end])?;
                self.buf.advance(end + 4);
                self.framing = head.framing;
                self.remaining = match head.framing {
                    Framing::Length(n) => n,
                    _ => 0,
                };
                self.chunk = Chunk::Size;
                self.done = head.framing == Framing::Length(0);
                if head.close || head.framing == Framing::UntilClose {
                    self.reusable = false;
                }
                return Ok(head);
            }
            if self.buf.len() > MAX_HEAD {
                self.reusable = false;
                return Err(bad("response head larger than 64 KiB"));
            }
            if self.fill().await?.is_none() {
                self.reusable = false;
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before a response",
                ));
            }
        }
    }

    /// The next piece of the body with the time of the read that delivered
    /// it (`None` time: the bytes were already buffered with the head), or
    /// `None` at the end of the body. `out` receives the decoded bytes.
    pub async fn next_body(&mut self, out: &mut Vec<u8>) -> io::Result<Option<Option<Instant>>> {
        out.clear();
        let mut t = None;
        loop {
            if self.done {
                return Ok(if out.is_empty() { None } else { Some(t) });
            }
            self.decode(out)?;
            if !out.is_empty() {
                return Ok(Some(t));
            }
            if self.done {
                continue;
            }
            match self.fill().await? {
                Some(now) => t = Some(now),
                None => {
                    self.reusable = false;
                    if self.framing == Framing::UntilClose {
                        self.done = true;
                        continue;
                    }
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed mid-body",
                    ));
                }
            }
        }
    }

    /// Move as much decoded body as the buffer holds into `out`.
    fn decode(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        match self.framing {
            Framing::Length(_) => {
                let n = (self.remaining as usize).min(self.buf.len());
                out.extend_from_slice(&self.buf[..n]);
                self.buf.advance(n);
                self.remaining -= n as u64;
                self.done = self.remaining == 0;
            }
            Framing::UntilClose => {
                out.extend_from_slice(&self.buf);
                self.buf.clear();
            }
            Framing::Chunked => loop {
                match self.chunk {
                    Chunk::Size => {
                        // The first CRLF (a one-byte search: a two-byte
                        // searcher costs more to build than this scan).
                        let eol = memchr::memchr_iter(b'\r', &self.buf)
                            .find(|&i| self.buf.get(i + 1) == Some(&b'\n'));
                        let Some(eol) = eol else {
                            // A size line is a few hex digits and maybe an
                            // extension: a server that never ends one must
                            // not grow the buffer without bound.
                            if self.buf.len() > MAX_CHUNK_LINE {
                                return Err(bad("chunk size line longer than 4 KiB"));
                            }
                            break;
                        };
                        let line = std::str::from_utf8(&self.buf[..eol])
                            .map_err(|_| bad("chunk size is not text"))?;
                        let hex = line.split(';').next().unwrap_or("").trim();
                        let size = u64::from_str_radix(hex, 16)
                            .map_err(|_| bad(format!("bad chunk size `{hex}`")))?;
                        self.buf.advance(eol + 2);
                        self.chunk = if size == 0 {
                            Chunk::Trailers
                        } else {
                            Chunk::Data(size)
                        };
                    }
                    Chunk::Data(left) => {
                        if self.buf.is_empty() {
                            break;
                        }
                        let n = (left as usize).min(self.buf.len());
                        out.extend_from_slice(&self.buf[..n]);
                        self.buf.advance(n);
                        self.chunk = if n as u64 == left {
                            Chunk::DataEnd
                        } else {
                            Chunk::Data(left - n as u64)
                        };
                    }
                    Chunk::DataEnd => {
                        if self.buf.len() < 2 {
                            break;
                        }
                        if &self.buf[..2] != b"\r\n" {
                            return Err(bad("missing CRLF after a chunk"));
                        }
                        self.buf.advance(2);
                        self.chunk = Chunk::Size;
                    }
                    Chunk::Trailers => {
                        let Some(eol) = memchr::memmem::find(&self.buf, b"\r\n") else {
                            break;
                        };
                        self.buf.advance(eol + 2);
                        if eol == 0 {
                            self.done = true;
                            break;
                        }
                    }
                }
            },
        }
        Ok(())
    }
}

/// Parse a status line and headers (without the final blank line).
fn parse_head(head: &[u8]) -> io::Result<Head> {
    let text = std::str::from_utf8(head).map_err(|_| bad("response head is not text"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(bad(format!("not an HTTP/1 response: `{status_line}`")));
    }
    let status: u16 = parts
        .next()
        .unwrap_or("")
        .parse()
        .map_err(|_| bad(format!("bad status line `{status_line}`")))?;
    let mut content_type = None;
    let mut length = None;
    let mut chunked = false;
    let mut close = version == "HTTP/1.0";
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<u64>()
                    .map_err(|_| bad(format!("bad Content-Length `{value}`")))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .to_ascii_lowercase()
                .split(',')
                .any(|v| v.trim() == "chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            if v.contains("close") {
                close = true;
            } else if v.contains("keep-alive") {
                close = false;
            }
        }
    }
    // 1xx, 204 and 304 have no body.
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Length(0)
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    Ok(Head {
        status,
        content_type,
        framing,
        close,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serve `responses` (raw bytes, written in `pieces` splits) to one
    /// connection, one per request received.
    async fn serve(responses: Vec<Vec<u8>>, split: usize) -> SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            for r in responses {
                let mut req = vec![0u8; 4096];
                let _ = s.read(&mut req).await.unwrap();
                for piece in r.chunks(split.max(1)) {
                    s.write_all(piece).await.unwrap();
                    s.flush().await.unwrap();
                    tokio::task::yield_now().await;
                }
            }
        });
        addr
    }

    async fn body_of(c: &mut H1Conn) -> Vec<u8> {
        let mut all = Vec::new();
        let mut out = Vec::new();
        while c.next_body(&mut out).await.unwrap().is_some() {
            all.extend_from_slice(&out);
        }
        all
    }

    /// Read one response from a server that sends `bytes` in `split`-byte
    /// writes then closes: the head and body, or the first error.
    async fn read_all(bytes: Vec<u8>, split: usize) -> io::Result<(Head, Vec<u8>)> {
        let addr = serve(vec![bytes], split).await;
        let mut c = H1Conn::connect(addr).await?;
        c.send(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n")
            .await?;
        let h = c.read_head().await?;
        let mut all = Vec::new();
        let mut out = Vec::new();
        while c.next_body(&mut out).await?.is_some() {
            all.extend_from_slice(&out);
        }
        Ok((h, all))
    }

    #[tokio::test]
    async fn endless_chunk_size_line_is_an_error_not_unbounded_buffering() {
        let mut r = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        r.extend(std::iter::repeat_n(b'a', 64 * 1024));
        let err = tokio::time::timeout(std::time::Duration::from_secs(20), read_all(r, 8192))
            .await
            .expect("no hang")
            .unwrap_err();
        assert!(err.to_string().contains("chunk size line"), "{err}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// The perf path's HTTP/1.1 reader on hostile responses: a valid
        /// head followed by arbitrary bytes, or arbitrary bytes alone, cut
        /// at arbitrary points. No panic, and the body read never exceeds
        /// what was sent.
        #[test]
        fn h1_reader_takes_any_response(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            head in 0usize..4,
            split in 1usize..64,
        ) {
            let heads: [&[u8]; 4] = [
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                b"HTTP/1.1 200 OK\r\ncontent-length: 40\r\n\r\n",
                b"HTTP/1.0 200 OK\r\n\r\n",
                b"",
            ];
            let mut bytes = heads[head].to_vec();
            bytes.extend_from_slice(&body);
            let sent = bytes.len();
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let res = rt.block_on(async {
                tokio::time::timeout(std::time::Duration::from_secs(20), read_all(bytes, split)).await
            });
            let res = res.expect("the reader finished");
            if let Ok((_, got)) = res {
                proptest::prop_assert!(got.len() <= sent);
            }
        }
    }

    #[tokio::test]
    async fn chunked_length_and_keep_alive_for_every_split() {
        let chunked = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n7\r\ndata: a\r\n4;x=1\r\n\n\nda\r\n9\r\nta: [DONE\r\n3\r\n]\n\n\r\n0\r\nx-trailer: 1\r\n\r\n".to_vec();
        let length = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 13\r\nContent-Type: application/json\r\n\r\n{\"error\":\"x\"}".to_vec();
        for split in [1, 2, 3, 7, 1000] {
            let addr = serve(vec![chunked.clone(), length.clone()], split).await;
            let mut c = H1Conn::connect(addr).await.unwrap();
            c.send(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            let h = c.read_head().await.unwrap();
            assert_eq!(
                (h.status, h.framing),
                (200, Framing::Chunked),
                "split {split}"
            );
            assert_eq!(h.content_type.as_deref(), Some("text/event-stream"));
            assert_eq!(
                body_of(&mut c).await,
                b"data: a\n\ndata: [DONE]\n\n".to_vec(),
                "split {split}"
            );
            assert!(c.is_reusable());
            c.send(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            let h = c.read_head().await.unwrap();
            assert_eq!((h.status, h.framing), (400, Framing::Length(13)));
            assert_eq!(body_of(&mut c).await, b"{\"error\":\"x\"}".to_vec());
            assert!(c.is_reusable());
        }
    }

    #[tokio::test]
    async fn close_framing_and_errors() {
        let addr = serve(vec![b"HTTP/1.0 200 OK\r\n\r\nhello".to_vec()], 1000).await;
        let mut c = H1Conn::connect(addr).await.unwrap();
        c.send(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let h = c.read_head().await.unwrap();
        assert_eq!(h.framing, Framing::UntilClose);
        assert!(h.close);
        assert_eq!(body_of(&mut c).await, b"hello".to_vec());
        assert!(!c.is_reusable());
        assert!(parse_head(b"SSH-2.0-x").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x").is_err());
        assert_eq!(
            parse_head(b"HTTP/1.1 204 No Content").unwrap().framing,
            Framing::Length(0)
        );
    }

    #[tokio::test]
    async fn truncated_chunked_body_is_an_error() {
        let addr = serve(
            vec![b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab".to_vec()],
            1000,
        )
        .await;
        let mut c = H1Conn::connect(addr).await.unwrap();
        c.send(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        c.read_head().await.unwrap();
        let mut out = Vec::new();
        let mut err = None;
        loop {
            match c.next_body(&mut out).await {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        assert!(err.is_some(), "a body cut mid-chunk must fail");
    }
}
