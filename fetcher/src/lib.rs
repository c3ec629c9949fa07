//! tepui-fetcher owns getting bytes onto the host: artifact URIs
//! (`CommandInfo.uris`) and registry blobs over HTTP(S) or from files, the fetcher
//! cache, and extraction of archives that never writes outside its target.
//!
//! It must not know about containers, cgroups or tasks: the containerizer and the
//! agent decide what to fetch and where; this crate only fetches and unpacks.
