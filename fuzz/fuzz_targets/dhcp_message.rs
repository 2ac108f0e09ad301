//! DHCPv4 messages as the dhcp daemon reads them from the network: any bytes through
//! `Message::decode`, then the lease an ACK grants and the CNI result built from it, then the
//! client's exchanges (acquire, renew) against a server that offers an address and answers the
//! REQUESTs with these bytes (their xid and chaddr patched to match, so the lease logic sees them). Nothing panics
//! or hangs; a decoded message encodes and decodes back to itself; a lease's timers are ordered
//! (T1 ≤ T2 ≤ lease time) and its result parses back as a 1.1.0 result.
//!
//! Input: the raw UDP payload (binary).
#![no_main]

use libfuzzer_sys::fuzz_target;
use plugins::dhcp::client::{self, scripted::Scripted, Params};
use plugins::dhcp::daemon::result_of;
use plugins::dhcp::proto::{opt, Lease, Message, MsgType};
use std::time::{Duration, Instant};

fn check_lease(l: &Lease) {
    assert!(l.t1 <= l.t2 && l.t2 <= l.lease_time, "timers out of order: {l:?}");
    assert!(l.prefix <= 32);
    for r in l.routes() {
        assert!(r.prefix <= 32, "{r:?}");
    }
    let r = result_of(l, 3);
    let text = serde_json::to_vec(&r).expect("a result serialises");
    let back = cni_types::CniResult::from_bytes(&text).expect("the result parses back");
    assert_eq!(back.version(), "1.1.0");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::decode(data) {
        let again = Message::decode(&m.encode()).expect("an encoded message decodes");
        assert_eq!(again, m, "decode(encode(m)) != m");
        let _ = m.msg_type();
        if let Ok(l) = Lease::from_ack(&m) {
            check_lease(&l);
        }
    }
    let reply = data.to_vec();
    let answer = move |q: &Message| {
        // DISCOVER gets a valid OFFER, so that the REQUEST (and the renewal) get the input
        if q.msg_type() == Some(MsgType::Discover) {
            let mut o = q.clone();
            o.op = 2;
            o.options.clear();
            o.yiaddr = std::net::Ipv4Addr::new(10, 9, 0, 50);
            o.set(opt::MESSAGE_TYPE, [MsgType::Offer as u8]);
            o.set(opt::SERVER_ID, [10, 9, 0, 1]);
            return vec![o.encode()];
        }
        let mut b = reply.clone();
        if b.len() >= 34 {
            b[4..8].copy_from_slice(&q.xid.to_be_bytes());
            b[28..34].copy_from_slice(&q.chaddr[..6]);
        }
        vec![b]
    };
    let mut t = Scripted::new(answer);
    let p = Params {
        chaddr: vec![2, 0, 0, 0, 0, 1],
        client_id: b"\0c1/net/eth0".to_vec(),
        request: vec![1, 3, 51, 58, 59],
        provide: vec![],
        resend_max: Duration::from_secs(1),
    };
    // (the scripted server answers at once; silence ends at the deadline)
    let soon = || Instant::now() + Duration::from_micros(300);
    if let Ok(l) = client::acquire(&mut t, &p, true, soon(), &|| false) {
        check_lease(&l);
        if let Ok(l2) = client::renew(&mut t, &p, &l, false, soon(), &|| false) {
            check_lease(&l2);
        }
        client::release(&mut t, &p, &l).expect("the scripted transport takes every datagram");
    }
});
