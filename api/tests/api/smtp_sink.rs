//! A tiny SMTP server on loopback that accepts every mail and hands it to the test:
//! the api talks real SMTP (lettre) to it, so the test reads the code from the mail
//! exactly as a person would.

use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The DATA section as received (headers, blank line, body), dot-unstuffed.
    pub data: String,
}

impl Mail {
    pub fn body(&self) -> &str {
        self.data
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or("")
    }

    /// The 6-digit code after "verification code: " in the body.
    pub fn code(&self) -> String {
        let body = self.body();
        let at = body
            .find("verification code: ")
            .unwrap_or_else(|| panic!("no code in mail body: {body}"));
        let code: String = body[at + "verification code: ".len()..]
            .chars()
            .take(6)
            .collect();
        assert!(code.chars().all(|c| c.is_ascii_digit()), "code {code:?}");
        code
    }
}

pub struct SmtpSink {
    pub port: u16,
    rx: mpsc::UnboundedReceiver<Mail>,
    task: JoinHandle<()>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(session(sock, tx.clone()));
            }
        });
        SmtpSink { port, rx, task }
    }

    /// The next mail, waiting up to 10 s.
    pub async fn next(&mut self) -> Mail {
        tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
            .await
            .expect("a mail within 10 s")
            .expect("sink running")
    }

    /// The next mail, or None when none came within `ms` or the sink stopped.
    pub async fn try_next(&mut self, ms: u64) -> Option<Mail> {
        tokio::time::timeout(Duration::from_millis(ms), self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// Whether any mail is waiting (after a short grace period).
    pub async fn is_empty(&mut self) -> bool {
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.rx.try_recv().is_err()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn session(sock: TcpStream, tx: mpsc::UnboundedSender<Mail>) {
    let (r, mut w) = sock.into_split();
    let mut lines = BufReader::new(r).lines();
    let mut mail = Mail {
        from: String::new(),
        to: Vec::new(),
        data: String::new(),
    };
    if w.write_all(b"220 sink ESMTP ready\r\n").await.is_err() {
        return;
    }
    while let Ok(Some(line)) = lines.next_line().await {
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250-sink\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail.from = line[10..].trim().to_string();
            b"250 ok\r\n"
        } else if upper.starts_with("RCPT TO:") {
            mail.to
                .push(line[8..].trim().trim_matches(['<', '>']).to_string());
            b"250 ok\r\n"
        } else if upper == "DATA" {
            if w.write_all(b"354 end with .\r\n").await.is_err() {
                return;
            }
            let mut data = String::new();
            while let Ok(Some(l)) = lines.next_line().await {
                if l == "." {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                data.push_str("\r\n");
            }
            mail.data = data;
            let _ = tx.send(std::mem::replace(
                &mut mail,
                Mail {
                    from: String::new(),
                    to: Vec::new(),
                    data: String::new(),
                },
            ));
            b"250 queued\r\n"
        } else if upper == "QUIT" {
            let _ = w.write_all(b"221 bye\r\n").await;
            return;
        } else if upper == "RSET" || upper == "NOOP" {
            b"250 ok\r\n"
        } else {
            b"502 not implemented\r\n"
        };
        if w.write_all(reply).await.is_err() {
            return;
        }
    }
}
