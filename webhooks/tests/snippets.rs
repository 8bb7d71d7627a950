//! The verification snippets of docs/webhooks.md, run as written (Python with `python3`,
//! Node with `node`) against headers signed by this crate: valid ones, a rotation's double
//! signature, a wrong secret, a changed body and a stale timestamp. An interpreter that is
//! not installed is reported and skipped; the other still runs.

use std::process::Command;
use vq_webhooks::signature;

fn block(doc: &str, lang: &str) -> String {
    let start = doc
        .find(&format!("```{lang}\n"))
        .unwrap_or_else(|| panic!("no {lang} block in docs/webhooks.md"));
    let rest = &doc[start + lang.len() + 4..];
    rest[..rest.find("```").expect("closed block")].to_string()
}

/// (secret, header, body, expected) cases, signed now by the server's code.
fn cases() -> Vec<(String, String, String, bool)> {
    let now = chrono::Utc::now().timestamp();
    let body = r#"{"id":"e1","type":"order.paid","data":{"order_id":1,"name":"Zoë"}}"#;
    let h = signature::header(&["whsec_new"], now, body.as_bytes());
    let both = signature::header(&["whsec_new", "whsec_old"], now, body.as_bytes());
    let stale = signature::header(&["whsec_new"], now - 3600, body.as_bytes());
    let s = |x: &str| x.to_string();
    vec![
        (s("whsec_new"), h.clone(), s(body), true),
        (s("whsec_old"), both.clone(), s(body), true),
        (s("whsec_new"), both, s(body), true),
        (s("whsec_other"), h.clone(), s(body), false),
        (
            s("whsec_new"),
            h,
            body.replace("order.paid", "order.refunded"),
            false,
        ),
        (s("whsec_new"), stale, s(body), false),
        (s("whsec_new"), s("v1=00"), s(body), false),
    ]
}

fn run(interpreter: &str, program: String) -> Option<String> {
    let out = match Command::new(interpreter).arg("-c").arg(&program).output() {
        Ok(o) => o,
        Err(_) if interpreter == "python3" => {
            eprintln!("{interpreter} not installed: its snippet is not run");
            return None;
        }
        Err(e) => panic!("{interpreter}: {e}"),
    };
    assert!(
        out.status.success(),
        "{interpreter}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

fn expected() -> String {
    cases().iter().map(|c| format!("{}\n", c.3)).collect()
}

#[test]
fn the_python_snippet_agrees_with_the_signer() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/webhooks.md"))
        .unwrap();
    let mut program = block(&doc, "python");
    program.push_str("\nimport json, sys\nfor s, h, b, _ in json.loads(sys.argv[1] if len(sys.argv) > 1 else CASES):\n    print(str(verify(s, h, b.encode())).lower())\n");
    let cases = serde_json::to_string(&cases()).unwrap();
    let program = format!("CASES = {cases:?}\n{program}");
    if let Some(out) = run("python3", program) {
        assert_eq!(out, expected());
    }
}

#[test]
fn the_node_snippet_agrees_with_the_signer() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/webhooks.md"))
        .unwrap();
    let cases = serde_json::to_string(&cases()).unwrap();
    let program = format!(
        "{}\nfor (const [s, h, b] of JSON.parse({cases:?})) console.log(String(verify(s, h, Buffer.from(b))));\n",
        block(&doc, "js")
    );
    let node = if std::path::Path::new("/usr/bin/node").exists() {
        "/usr/bin/node"
    } else {
        "node"
    };
    let out = Command::new(node)
        .arg("-e")
        .arg(&program)
        .output()
        .expect("node is installed");
    assert!(
        out.status.success(),
        "node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected());
}
