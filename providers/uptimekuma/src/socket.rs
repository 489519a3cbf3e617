//! The Engine.IO v4 / Socket.IO v5 text framing Uptime Kuma speaks over its websocket, written
//! out here because the part of the protocol a client needs is small (open, connect, events,
//! acks, ping and pong) and the crates that implement all of it bring an async runtime and
//! OpenSSL with them.
//!
//! A websocket message is one Engine.IO packet: a digit for its type (`0` open, `1` close,
//! `2` ping, `3` pong, `4` message, `6` noop), then its data. A message carries one Socket.IO
//! packet: a digit for its type (`0` connect, `1` disconnect, `2` event, `3` ack, `4` connect
//! error), an optional namespace (`/admin,`; Uptime Kuma uses only the default one), an
//! optional ack id, then JSON. An event is `["name", args…]`; an ack is `[args…]`. No binary
//! packets: every value Uptime Kuma sends is JSON text.

use std::fmt;

use serde_json::Value;

/// One packet, as read from a websocket text message.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `0{…}`: the handshake (`sid`, `pingInterval`, `pingTimeout`, `maxPayload`).
    Open(Value),
    /// `1`: the server closes the session.
    Close,
    /// `2`: the server's heartbeat, to be answered by [`PONG`].
    Ping,
    /// `3`.
    Pong,
    /// `6`.
    Noop,
    /// `40{…}`: the namespace is connected.
    Connect(Value),
    /// `41`: the namespace is disconnected.
    Disconnect,
    /// `44{…}`: the namespace refused the connection.
    ConnectError(Value),
    /// `42["name", args…]`, or `42<id>["name", args…]` when the sender wants an ack.
    Event {
        name: String,
        args: Vec<Value>,
        ack: Option<u64>,
    },
    /// `43<id>[args…]`: the answer to the event sent with that id.
    Ack { id: u64, args: Vec<Value> },
}

/// The client's namespace connect packet.
pub const CONNECT: &str = "40";
/// The answer to a [`Frame::Ping`].
pub const PONG: &str = "3";

/// A message that is not a packet of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFrame(pub String);

impl fmt::Display for BadFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads one websocket text message.
///
/// # Errors
/// [`BadFrame`] for text that is not a packet Uptime Kuma sends (binary packets included),
/// saying what is wrong without quoting the message (it may carry secrets).
pub fn parse(text: &str) -> Result<Frame, BadFrame> {
    let mut chars = text.chars();
    let bad = |why: &str| Err(BadFrame(format!("{why} ({} bytes)", text.len())));
    match chars.next() {
        Some('0') => json(&text[1..]).map(Frame::Open),
        Some('1') => Ok(Frame::Close),
        Some('2') => Ok(Frame::Ping),
        Some('3') => Ok(Frame::Pong),
        Some('6') => Ok(Frame::Noop),
        Some('4') => message(&text[1..]),
        Some(_) => bad("an unknown Engine.IO packet type"),
        None => bad("an empty message"),
    }
}

fn message(text: &str) -> Result<Frame, BadFrame> {
    let bad = |why: &str| Err(BadFrame(format!("{why} ({} bytes)", text.len() + 1)));
    let Some(kind) = text.chars().next() else {
        return bad("an empty Socket.IO packet");
    };
    let mut rest = &text[1..];
    // A namespace other than `/` is written before a comma; Uptime Kuma has none.
    if rest.starts_with('/') {
        match rest.find(',') {
            Some(comma) => rest = &rest[comma + 1..],
            None => rest = "",
        }
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = if digits == 0 {
        None
    } else {
        match rest[..digits].parse::<u64>() {
            Ok(id) => Some(id),
            Err(_) => return bad("an ack id out of range"),
        }
    };
    let body = &rest[digits..];
    match kind {
        '0' => Ok(Frame::Connect(if body.is_empty() {
            Value::Null
        } else {
            json(body)?
        })),
        '1' => Ok(Frame::Disconnect),
        '4' => json(body).map(Frame::ConnectError),
        '2' => {
            let Value::Array(mut items) = json(body)? else {
                return bad("an event that is not a JSON array");
            };
            if items.is_empty() {
                return bad("an event without a name");
            }
            let Value::String(name) = items.remove(0) else {
                return bad("an event whose name is not a string");
            };
            Ok(Frame::Event {
                name,
                args: items,
                ack: id,
            })
        }
        '3' => {
            let Some(id) = id else {
                return bad("an ack without an id");
            };
            let Value::Array(args) = json(body)? else {
                return bad("an ack that is not a JSON array");
            };
            Ok(Frame::Ack { id, args })
        }
        '5' | '6' => bad("a binary packet"),
        _ => bad("an unknown Socket.IO packet type"),
    }
}

fn json(text: &str) -> Result<Value, BadFrame> {
    serde_json::from_str(text).map_err(|e| {
        BadFrame(format!(
            "JSON that does not parse ({e}; {} bytes)",
            text.len()
        ))
    })
}

/// The text of an event `name` with `args`, asking for an ack with `ack` when given:
/// `42["name",…]` or `42<id>["name",…]`. Each argument is one element of the array, so an event
/// without arguments is `42["name"]`.
pub fn event(ack: Option<u64>, name: &str, args: &[Value]) -> String {
    let mut items = Vec::with_capacity(args.len() + 1);
    items.push(Value::String(name.to_string()));
    items.extend(args.iter().cloned());
    let body = Value::Array(items).to_string();
    match ack {
        Some(id) => format!("42{id}{body}"),
        None => format!("42{body}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Frames as recorded from Uptime Kuma 2.5.3 (one login / add / delete cycle).
    #[test]
    fn recorded_server_frames_parse() {
        let open = parse(
            r#"0{"sid":"WUFMBR5AAY11cGphAAAH","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
        )
        .unwrap();
        assert_eq!(
            open,
            Frame::Open(
                json!({"sid":"WUFMBR5AAY11cGphAAAH","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000})
            )
        );
        assert_eq!(
            parse(r#"40{"sid":"SDRjvwqVekpSusoyAAAI"}"#).unwrap(),
            Frame::Connect(json!({"sid":"SDRjvwqVekpSusoyAAAI"}))
        );
        assert_eq!(
            parse(r#"42["loginRequired"]"#).unwrap(),
            Frame::Event {
                name: "loginRequired".into(),
                args: vec![],
                ack: None
            }
        );
        assert_eq!(
            parse(r#"42["uptime",1,"1y",1]"#).unwrap(),
            Frame::Event {
                name: "uptime".into(),
                args: vec![json!(1), json!("1y"), json!(1)],
                ack: None
            }
        );
        assert_eq!(
            parse(r#"431[{"ok":true,"msg":"successAdded","msgi18n":true,"monitorID":1}]"#).unwrap(),
            Frame::Ack {
                id: 1,
                args: vec![json!({"ok":true,"msg":"successAdded","msgi18n":true,"monitorID":1})]
            }
        );
        assert_eq!(
            parse(r#"4310[{"ok":true}]"#).unwrap(),
            Frame::Ack {
                id: 10,
                args: vec![json!({"ok":true})]
            }
        );
        assert_eq!(
            parse(r#"42["deleteMonitorFromList",1]"#).unwrap(),
            Frame::Event {
                name: "deleteMonitorFromList".into(),
                args: vec![json!(1)],
                ack: None
            }
        );
        // `logout` is acked with no arguments at all.
        assert_eq!(
            parse("43n[]".replace('n', "7").as_str()).unwrap(),
            Frame::Ack {
                id: 7,
                args: vec![]
            }
        );
        assert_eq!(parse("2").unwrap(), Frame::Ping);
        assert_eq!(parse("41").unwrap(), Frame::Disconnect);
        assert_eq!(parse("1").unwrap(), Frame::Close);
    }

    /// The client's side of the recorded session, byte for byte.
    #[test]
    fn events_encode_as_recorded() {
        assert_eq!(
            event(
                Some(0),
                "login",
                &[json!({"username":"admin","password":"pw","token":""})]
            ),
            r#"420["login",{"password":"pw","token":"","username":"admin"}]"#
        );
        assert_eq!(
            event(Some(2), "getMonitorList", &[]),
            r#"422["getMonitorList"]"#
        );
        assert_eq!(
            event(Some(3), "getMonitor", &[json!(1)]),
            r#"423["getMonitor",1]"#
        );
        assert_eq!(
            event(
                Some(6),
                "addMonitorTag",
                &[json!(1), json!(1), json!("stack=demo")]
            ),
            r#"426["addMonitorTag",1,1,"stack=demo"]"#
        );
        assert_eq!(
            event(Some(9), "deleteMonitor", &[json!(1), json!(false)]),
            r#"429["deleteMonitor",1,false]"#
        );
        assert_eq!(event(None, "x", &[]), r#"42["x"]"#);
    }

    #[test]
    fn a_namespace_is_skipped() {
        assert_eq!(
            parse(r#"42/admin,5["x",1]"#).unwrap(),
            Frame::Event {
                name: "x".into(),
                args: vec![json!(1)],
                ack: Some(5)
            }
        );
    }

    #[test]
    fn broken_frames_are_refused_without_quoting_them() {
        for text in [
            "",
            "9",
            "4",
            "42",
            "42{}",
            "42[]",
            "42[1]",
            "43[{}]",
            "43{\"password\":\"hunter2\"}",
            "451-[\"x\",{\"_placeholder\":true,\"num\":0}]",
            "42[\"unterminated",
        ] {
            let err = parse(text).expect_err(text);
            assert!(!err.0.contains("hunter2"), "{err}");
        }
    }
}
