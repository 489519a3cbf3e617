//! Asks the test server over DNS (UDP on its port), to see what it really serves.

use std::net::UdpSocket;
use std::str::FromStr;
use std::time::Duration;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

/// The answer to one question: its response code and the answers of the type asked, as
/// sorted text (TXT strings joined, names absolute).
#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    pub code: ResponseCode,
    pub records: Vec<String>,
}

pub fn ask(port: u16, name: &str, rtype: &str) -> Answer {
    let rtype = RecordType::from_str(rtype).unwrap();
    let mut query = Message::query();
    query.add_query(Query::query(Name::from_utf8(name).unwrap(), rtype));
    let bytes = query.to_vec().unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(("127.0.0.1", port)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    socket.send(&bytes).unwrap();
    let mut buf = vec![0u8; 65_535];
    loop {
        let n = socket.recv(&mut buf).expect("an answer over DNS");
        let Ok(response) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if response.metadata.id != query.metadata.id {
            continue;
        }
        let mut records: Vec<String> = response
            .answers
            .iter()
            .filter(|r| r.record_type() == rtype)
            .map(|r| match &r.data {
                RData::TXT(txt) => txt
                    .txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<Vec<_>>()
                    .join(""),
                other => other.to_string(),
            })
            .collect();
        records.sort();
        return Answer {
            code: response.metadata.response_code,
            records,
        };
    }
}

/// The sorted answers of the type asked.
pub fn answers(port: u16, name: &str, rtype: &str) -> Vec<String> {
    ask(port, name, rtype).records
}
