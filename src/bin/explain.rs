//! `vipps-explain`: paste an error response, get the diagnosis.
//!
//! ```text
//! cargo install tower-vipps --features cli
//! vipps-explain --api epayment --status 401 '{"statusCode":401,"message":"Subscription not found."}'
//! vipps-explain --api ecom --status 400 < body.json
//! vipps-explain --jsonl < error-corpus.jsonl
//!
//! # From a checkout (the `--` hands the arguments to the tool, not to cargo):
//! cargo run --features cli --bin vipps-explain -- --api epayment --status 401 '<body>'
//! ```
//!
//! With `--jsonl` it reads lines `{"api":…,"status":…,"body":…}` from stdin and
//! writes exactly one line `{"code":"vipps::…"}` per input line, in order; a line
//! it cannot read gives `{"code":null,"error":"…"}`.

use std::io::{BufRead, Read, Write};

use http::{HeaderMap, StatusCode};
use tower_vipps::diagnose::classify;
use tower_vipps::{Api, Diagnosis, RequestContext};

const USAGE: &str = "usage: vipps-explain [--api NAME] [--status CODE] [BODY | -]
       vipps-explain --jsonl < lines.jsonl

  --api NAME     epayment, ecom, recurring, checkout, login, accesstoken,
                 management, partner or other (default: other)
  --status CODE  the HTTP status of the response (default: 400)
  BODY           the response body; `-` or none reads it from stdin
  --jsonl        read {\"api\":…,\"status\":…,\"body\":…} per line from stdin and
                 write {\"code\":…} per line";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => {}
        Err(message) => {
            eprintln!("vipps-explain: {message}\n\n{USAGE}");
            std::process::exit(2);
        }
    }
}

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Command {
    Help,
    Jsonl,
    Explain {
        api: Api,
        status: StatusCode,
        body: Option<String>,
    },
}

pub fn parse_args(args: &[String]) -> Result<Command, String> {
    let mut api = Api::Other;
    let mut status = StatusCode::BAD_REQUEST;
    let mut body = None;
    let mut jsonl = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--jsonl" => jsonl = true,
            "--api" => {
                let name = args.next().ok_or("--api needs a name")?;
                api = parse_api(name)?;
            }
            "--status" => {
                let code = args.next().ok_or("--status needs a code")?;
                status = parse_status(code)?;
            }
            other if other.starts_with("--api=") => api = parse_api(&other[6..])?,
            other if other.starts_with("--status=") => status = parse_status(&other[9..])?,
            other if other.starts_with("--") => return Err(format!("unknown option {other}")),
            "-" => body = None,
            other => {
                if body.is_some() {
                    return Err("give the body once (quote it)".into());
                }
                body = Some(other.to_owned());
            }
        }
    }
    if jsonl {
        return Ok(Command::Jsonl);
    }
    Ok(Command::Explain { api, status, body })
}

fn parse_api(name: &str) -> Result<Api, String> {
    Api::from_name(name).ok_or_else(|| format!("unknown api {name:?}"))
}

fn parse_status(code: &str) -> Result<StatusCode, String> {
    code.trim()
        .parse::<u16>()
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or_else(|| format!("not an HTTP status: {code:?}"))
}

fn run(args: &[String]) -> Result<(), String> {
    match parse_args(args)? {
        Command::Help => {
            println!("{USAGE}");
            Ok(())
        }
        Command::Jsonl => {
            let stdin = std::io::stdin().lock();
            let mut stdout = std::io::stdout().lock();
            jsonl(stdin, &mut stdout).map_err(|e| format!("i/o: {e}"))
        }
        Command::Explain { api, status, body } => {
            let body = match body {
                Some(body) => body.into_bytes(),
                None => {
                    let mut buf = Vec::new();
                    std::io::stdin()
                        .take(tower_vipps::diagnose::BODY_CAP as u64)
                        .read_to_end(&mut buf)
                        .map_err(|e| format!("reading stdin: {e}"))?;
                    buf
                }
            };
            print!("{}", explain(api, status, &body));
            Ok(())
        }
    }
}

/// The diagnosis of one response.
fn diagnose(api: Api, status: StatusCode, body: &[u8]) -> Diagnosis {
    let context = RequestContext {
        api,
        ..Default::default()
    };
    classify(&context, status, &HeaderMap::new(), body)
}

/// The text printed for one response: the status line and the report.
pub fn explain(api: Api, status: StatusCode, body: &[u8]) -> String {
    let diagnosis = diagnose(api, status, body);
    format!("{api} answered {status}\n\n{}", diagnosis.report())
}

/// One output line (without the newline) for one input line. An error echoes at
/// most 200 characters of the input, whatever its size.
pub fn jsonl_line(line: &str) -> String {
    const ECHO: usize = 200;
    match jsonl_code(line) {
        Ok(code) => serde_json::json!({ "code": code }).to_string(),
        Err(mut error) => {
            if let Some((cut, _)) = error.char_indices().nth(ECHO) {
                error.truncate(cut);
                error.push('…');
            }
            serde_json::json!({ "code": null, "error": error }).to_string()
        }
    }
}

fn jsonl_code(line: &str) -> Result<&'static str, String> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let object = value.as_object().ok_or("not a JSON object")?;
    let api = match object.get("api") {
        None | Some(serde_json::Value::Null) => Api::Other,
        Some(serde_json::Value::String(name)) => parse_api(name)?,
        Some(_) => return Err("`api` is not a string".into()),
    };
    let status = match object.get("status") {
        Some(serde_json::Value::Number(n)) => parse_status(&n.to_string())?,
        Some(serde_json::Value::String(s)) => parse_status(s)?,
        _ => return Err("`status` is missing or not a number".into()),
    };
    let body = match object.get("body") {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        // A body given as JSON rather than as a string of JSON.
        Some(other) => other.to_string(),
    };
    Ok(diagnose(api, status, body.as_bytes()).code())
}

/// Reads lines from `input` and writes one answer line per line to `output`.
pub fn jsonl(input: impl BufRead, output: &mut impl Write) -> std::io::Result<()> {
    for line in input.split(b'\n') {
        let line = line?;
        let line = String::from_utf8_lossy(&line);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        writeln!(output, "{}", jsonl_line(line))?;
    }
    output.flush()
}
