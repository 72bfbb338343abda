//! nsqlookupd queries a client makes: the nsqd producing a topic, and the topics known.

/// One nsqd as nsqlookupd describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Producer {
    pub broadcast_address: String,
    #[serde(default)]
    pub hostname: String,
    pub tcp_port: u16,
    #[serde(default)]
    pub http_port: u16,
    #[serde(default)]
    pub version: String,
}

impl Producer {
    /// `broadcast_address:tcp_port`, bracketing IPv6 addresses.
    pub fn tcp_address(&self) -> String {
        if self.broadcast_address.contains(':') {
            format!("[{}]:{}", self.broadcast_address, self.tcp_port)
        } else {
            format!("{}:{}", self.broadcast_address, self.tcp_port)
        }
    }

    /// `broadcast_address:http_port`, bracketing IPv6 addresses.
    pub fn http_address(&self) -> String {
        if self.broadcast_address.contains(':') {
            format!("[{}]:{}", self.broadcast_address, self.http_port)
        } else {
            format!("{}:{}", self.broadcast_address, self.http_port)
        }
    }
}
