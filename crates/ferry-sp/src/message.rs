//! [`Message`]: what a socket sends and receives.

use bytes::Bytes;
use std::fmt;

/// Identifies one connection (pipe) of a socket. Ids are random in `1..=0x7fff_ffff`, as
/// NNG's are, and unique within a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PipeId(pub(crate) u32);

impl PipeId {
    /// The numeric id.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for PipeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

/// One SP message: a protocol header and a body.
///
/// On the wire the two travel as one payload, `header ++ body`. Cooked sockets add and
/// strip the header themselves, so applications only deal with `body`. Both parts are
/// [`Bytes`], so cloning a message or slicing it out of a receive buffer does not copy.
///
/// ```
/// use ferry_sp::Message;
/// let m = Message::from("hello");
/// assert_eq!(&m.body[..], b"hello");
/// assert!(m.header.is_empty());
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The SP protocol header (backtrace, request id, hop count…). Empty for cooked use.
    pub header: Bytes,
    /// The application payload.
    pub body: Bytes,
    pub(crate) pipe: Option<PipeId>,
}

impl Message {
    /// A message with an empty header.
    pub fn new(body: impl Into<Bytes>) -> Message {
        Message { header: Bytes::new(), body: body.into(), pipe: None }
    }

    /// The pipe a received message arrived on.
    ///
    /// For PAIR v1 polyamorous sockets, setting it with [`Message::set_pipe`] chooses the
    /// pipe a send goes to.
    pub fn pipe(&self) -> Option<PipeId> {
        self.pipe
    }

    /// Directs a send to one pipe (PAIR v1 polyamorous).
    pub fn set_pipe(&mut self, pipe: Option<PipeId>) {
        self.pipe = pipe;
    }

    /// Header plus body length: the size of the payload on the wire.
    pub fn len(&self) -> usize {
        self.header.len() + self.body.len()
    }

    /// Whether both header and body are empty.
    pub fn is_empty(&self) -> bool {
        self.header.is_empty() && self.body.is_empty()
    }

    pub(crate) fn with_header(header: Bytes, body: Bytes) -> Message {
        Message { header, body, pipe: None }
    }

    /// Consumes the message, returning the body.
    pub fn into_body(self) -> Bytes {
        self.body
    }
}

impl From<Bytes> for Message {
    fn from(body: Bytes) -> Message {
        Message::new(body)
    }
}
impl From<Vec<u8>> for Message {
    fn from(body: Vec<u8>) -> Message {
        Message::new(body)
    }
}
impl From<&'static str> for Message {
    fn from(body: &'static str) -> Message {
        Message::new(Bytes::from_static(body.as_bytes()))
    }
}
impl From<&'static [u8]> for Message {
    fn from(body: &'static [u8]) -> Message {
        Message::new(Bytes::from_static(body))
    }
}
impl From<String> for Message {
    fn from(body: String) -> Message {
        Message::new(body)
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("header_len", &self.header.len())
            .field("body_len", &self.body.len())
            .field("pipe", &self.pipe)
            .finish()
    }
}
