//! The control socket: a Unix stream socket taking one command per line and answering each with
//! zero or more lines, then `ok` or `error: REASON`:
//!
//! ```text
//! add RULE      arm a rule (text form, see the rule module)
//! clear         disarm every rule
//! rules         the rules that can still fire
//! events        every event so far, one per line
//! ```
//!
//! `rnfsd-faultproxy ctl PATH COMMAND...` is a client for it, for shell scripts.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;

use crate::{Control, Rule};

/// The answer to one command line: its output lines, the last being `ok` or `error: ...`.
pub fn execute(control: &Control, line: &str) -> Vec<String> {
    let line = line.trim();
    let (command, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    let mut out = Vec::new();
    match (command, rest.is_empty()) {
        ("add", false) => match rest.parse::<Rule>() {
            Ok(rule) => {
                out.push(format!("armed {rule}"));
                control.add_rule(rule);
            }
            Err(e) => return vec![format!("error: {e}")],
        },
        ("clear", true) => control.clear_rules(),
        ("rules", true) => out.extend(control.rules()),
        ("events", true) => out.extend(control.events().iter().map(ToString::to_string)),
        _ => return vec![format!("error: unknown command {line:?} (add RULE, clear, rules, events)")],
    }
    out.push("ok".to_string());
    out
}

/// Serves the control socket at `path` (replacing a stale socket file) until the task is
/// dropped.
pub async fn serve(path: PathBuf, control: Control) -> std::io::Result<()> {
    let listener = bind(&path)?;
    loop {
        let (stream, _) = listener.accept().await?;
        let control = control.clone();
        tokio::spawn(async move {
            let (rx, mut tx) = stream.into_split();
            let mut lines = BufReader::new(rx).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut answer = execute(&control, &line).join("\n");
                answer.push('\n');
                if tx.write_all(answer.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
    }
}

fn bind(path: &Path) -> std::io::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    UnixListener::bind(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commands_arm_list_and_clear_rules() {
        let proxy = crate::FaultProxy::start("127.0.0.1:0".parse().unwrap(), "127.0.0.1:9".parse().unwrap())
            .await
            .unwrap();
        let c = proxy.control();
        assert_eq!(
            execute(&c, "add drop-reply-close remove count=2"),
            ["armed drop-reply-close REMOVE count=2", "ok"]
        );
        assert_eq!(
            execute(&c, "rules"),
            ["drop-reply-close REMOVE count=2  (skip left 0, fires left 2)", "ok"]
        );
        assert_eq!(execute(&c, "events"), ["ok"]);
        assert_eq!(execute(&c, "clear"), ["ok"]);
        assert_eq!(execute(&c, "rules"), ["ok"]);
        assert!(execute(&c, "add explode")[0].starts_with("error: unknown action"));
        assert!(execute(&c, "frobnicate")[0].starts_with("error: unknown command"));
        assert!(execute(&c, "add")[0].starts_with("error: unknown command"));
    }

    #[tokio::test]
    async fn the_socket_answers_line_by_line() {
        let proxy = crate::FaultProxy::start("127.0.0.1:0".parse().unwrap(), "127.0.0.1:9".parse().unwrap())
            .await
            .unwrap();
        let dir = std::env::temp_dir().join(format!("faultproxy-ctl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("control");
        let server = tokio::spawn(serve(path.clone(), proxy.control()));
        let mut stream = loop {
            match tokio::net::UnixStream::connect(&path).await {
                Ok(s) => break s,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        };
        stream.write_all(b"add delay-reply 5 WRITE\nrules\n").await.unwrap();
        let mut lines = BufReader::new(stream).lines();
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(lines.next_line().await.unwrap().unwrap());
        }
        assert_eq!(
            got,
            ["armed delay-reply 5 WRITE", "ok", "delay-reply 5 WRITE  (skip left 0, fires left 1)", "ok"]
        );
        server.abort();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
