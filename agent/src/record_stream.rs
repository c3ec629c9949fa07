//! A RecordIO-framed HTTP response body as a stream of protobuf messages:
//! what both the agent's master link and an executor's subscription read.

use std::collections::VecDeque;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use prost::Message;
use tepui_proto::recordio::Decoder;

/// Why the stream ended early: the transport broke, or a record was not
/// RecordIO / not the expected message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamFault {
    Transport(String),
    Malformed(String),
}

pub type Messages<T> = Pin<Box<dyn Stream<Item = Result<T, StreamFault>> + Send>>;

/// Decodes `bytes` into messages; ends after the first fault.
pub fn decode<T, S>(bytes: S) -> Messages<T>
where
    T: Message + Default + Send + 'static,
    S: Stream<Item = Result<Bytes, reqwest::Error>> + Send + 'static,
{
    let state = (Box::pin(bytes), Decoder::new(), VecDeque::<Bytes>::new());
    Box::pin(futures_util::stream::unfold(
        Some(state),
        |state| async move {
            let (mut bytes, mut decoder, mut ready) = state?;
            loop {
                if let Some(record) = ready.pop_front() {
                    let message =
                        T::decode(record).map_err(|e| StreamFault::Malformed(e.to_string()));
                    return Some((message, Some((bytes, decoder, ready))));
                }
                match bytes.next().await {
                    Some(Ok(chunk)) => match decoder.feed(&chunk) {
                        Ok(records) => ready.extend(records),
                        Err(e) => return Some((Err(StreamFault::Malformed(e.to_string())), None)),
                    },
                    Some(Err(e)) => {
                        return Some((Err(StreamFault::Transport(e.to_string())), None));
                    }
                    None => return None,
                }
            }
        },
    ))
}
