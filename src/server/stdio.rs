//! The stdio transport with an answer for every line. rmcp reads newline-delimited JSON-RPC
//! and silently drops what it cannot parse, so a client waiting on that request's id would
//! hang. Here a reader task checks each line first ([`super::jsonrpc::precheck`]): good
//! lines go on to rmcp through an in-memory pipe, bad ones are answered at once (-32700,
//! -32600, -32602). A writer task merges rmcp's output and those answers line by line onto
//! stdout, so the two never interleave inside a message.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::mpsc;

use super::jsonrpc::{self, Rejection};

/// Largest line accepted (a request bigger than this is answered -32600, never buffered).
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

/// The transport for rmcp (what it reads, what it writes) plus the task that writes
/// stdout; await it after the service ends so the last answers are flushed.
pub struct FilteredStdio {
    pub read: DuplexStream,
    pub write: DuplexStream,
    pub writer: tokio::task::JoinHandle<()>,
}

/// Filter the process's stdin and stdout.
pub fn filtered() -> FilteredStdio {
    filtered_over(tokio::io::stdin(), tokio::io::stdout())
}

/// Filter any input and output (tests use in-memory pipes).
pub fn filtered_over<R, W>(input: R, mut output: W) -> FilteredStdio
where
    R: tokio::io::AsyncRead + Send + Unpin + 'static,
    W: tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (rmcp_read, mut feed) = tokio::io::duplex(1 << 20);
    let (rmcp_write, from_rmcp) = tokio::io::duplex(1 << 20);
    let (answers, mut answers_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        let mut input = BufReader::new(input);
        let mut line = Vec::new();
        loop {
            line.clear();
            let too_long = match read_line_capped(&mut input, &mut line, MAX_LINE_BYTES).await {
                Ok(Line::Eof) => break,
                Ok(Line::Complete) => false,
                Ok(Line::TooLong) => true,
                Err(_) => break,
            };
            let message = line.trim_ascii();
            if message.is_empty() && !too_long {
                continue;
            }
            let verdict = if too_long {
                Err(Rejection::new(
                    jsonrpc::INVALID_REQUEST,
                    format!("invalid request: a message is longer than {MAX_LINE_BYTES} bytes"),
                    serde_json::Value::Null,
                ))
            } else {
                jsonrpc::precheck(message)
            };
            match verdict {
                Ok(_) => {
                    if feed.write_all(message).await.is_err()
                        || feed.write_all(b"\n").await.is_err()
                    {
                        break;
                    }
                }
                Err(r) => {
                    let mut out = serde_json::to_vec(&r.body()).unwrap_or_default();
                    out.push(b'\n');
                    if answers.send(out).is_err() {
                        break;
                    }
                }
            }
        }
        // End of input: dropping `feed` tells rmcp, which then ends the session.
    });
    let writer = tokio::spawn(async move {
        let mut from_rmcp = BufReader::new(from_rmcp);
        // Kept across select! rounds: a partly read rmcp line waits here until complete.
        let mut buf = Vec::new();
        let mut answers_open = true;
        loop {
            tokio::select! {
                r = from_rmcp.read_until(b'\n', &mut buf) => {
                    match r {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            if buf.ends_with(b"\n") {
                                if output.write_all(&buf).await.is_err() || output.flush().await.is_err() {
                                    break;
                                }
                                buf.clear();
                            }
                        }
                    }
                }
                a = answers_rx.recv(), if answers_open => {
                    match a {
                        Some(line) => {
                            if output.write_all(&line).await.is_err() || output.flush().await.is_err() {
                                break;
                            }
                        }
                        None => answers_open = false,
                    }
                }
            }
        }
        // rmcp is done: answer what is still queued.
        while let Ok(line) = answers_rx.try_recv() {
            let _ = output.write_all(&line).await;
        }
        if !buf.is_empty() {
            let _ = output.write_all(&buf).await;
        }
        let _ = output.flush().await;
    });
    FilteredStdio {
        read: rmcp_read,
        write: rmcp_write,
        writer,
    }
}

enum Line {
    Eof,
    Complete,
    /// Longer than the cap: the rest of the line was read and thrown away.
    TooLong,
}

async fn read_line_capped<R: AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<Line> {
    let mut discarding = false;
    let mut any = false;
    loop {
        let chunk = r.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(match (any, discarding) {
                (false, _) => Line::Eof,
                (true, true) => Line::TooLong,
                (true, false) => Line::Complete,
            });
        }
        any = true;
        let (part, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (&chunk[..=i], true),
            None => (chunk, false),
        };
        let n = part.len();
        if !discarding {
            if buf.len() + n > cap + 1 {
                discarding = true;
                buf.clear();
            } else {
                buf.extend_from_slice(part);
            }
        }
        r.consume(n);
        if done {
            return Ok(if discarding {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn bad_lines_are_answered_and_good_ones_pass_through() {
        let (mut client_in, server_in) = tokio::io::duplex(1 << 16);
        let (server_out, mut client_out) = tokio::io::duplex(1 << 16);
        let f = filtered_over(server_in, server_out);
        client_in
            .write_all(
                b"{oops\n\n[1,2]\n{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\"}\n\xff\n",
            )
            .await
            .unwrap();
        drop(client_in);
        // What rmcp would read: only the good line.
        let mut passed = String::new();
        let mut read = f.read;
        read.read_to_string(&mut passed).await.unwrap();
        assert_eq!(
            passed,
            "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\"}\n"
        );
        drop(f.write);
        f.writer.await.unwrap();
        let mut out = String::new();
        client_out.read_to_string(&mut out).await.unwrap();
        let codes: Vec<i64> = out
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["error"]["code"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        assert_eq!(codes, vec![-32700, -32600, -32700]);
    }

    #[tokio::test]
    async fn overlong_lines_are_refused_without_buffering_them() {
        let data = [b'x'; 100];
        let mut r = BufReader::with_capacity(8, &data[..]);
        let mut buf = Vec::new();
        assert!(matches!(
            read_line_capped(&mut r, &mut buf, 10).await.unwrap(),
            Line::TooLong
        ));
        assert!(buf.len() <= 11);
    }
}
