//! Turning a `CommandInfo.URI` value into a source and a file name, following
//! the Mesos fetcher's rules.

use std::path::{Path, PathBuf};

use crate::error::FetchError;

/// Where the bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Http(reqwest::Url),
    Local(PathBuf),
}

/// Resolves a URI value: `http(s)://` URLs, `file://` and absolute paths, and
/// relative paths beneath `frameworks_home`. Leading whitespace is ignored, as
/// in Mesos.
pub fn resolve(value: &str, frameworks_home: Option<&Path>) -> Result<Source, FetchError> {
    let value = value.trim_start();
    let invalid = |reason: String| FetchError::InvalidUri {
        uri: value.to_string(),
        reason,
    };
    if let Some(idx) = value.find("://") {
        let scheme = value[..idx].to_ascii_lowercase();
        return match scheme.as_str() {
            "http" | "https" => reqwest::Url::parse(value)
                .map(Source::Http)
                .map_err(|e| invalid(format!("invalid URL: {e}"))),
            "file" => {
                let path = &value[idx + 3..];
                if !path.starts_with('/') {
                    return Err(invalid("file:// URI must name an absolute path".into()));
                }
                Ok(Source::Local(PathBuf::from(path)))
            }
            _ => Err(FetchError::UnsupportedScheme {
                uri: value.to_string(),
                scheme,
            }),
        };
    }
    if value.is_empty() {
        return Err(invalid("empty URI".into()));
    }
    if value.starts_with('/') {
        return Ok(Source::Local(PathBuf::from(value)));
    }
    match frameworks_home {
        Some(home) => Ok(Source::Local(home.join(value))),
        None => Err(invalid(
            "relative path but no frameworks home (--frameworks_home) is configured".into(),
        )),
    }
}

/// The file name Mesos would give the fetched file: the last `/`-separated
/// component of the path. Unlike Mesos, an HTTP URL's query and fragment are
/// not part of it (Mesos keeps them, which defeats archive detection).
pub fn basename(value: &str, source: &Source) -> Result<String, FetchError> {
    let path = match source {
        Source::Http(url) => url.path().to_string(),
        Source::Local(p) => p.to_string_lossy().into_owned(),
    };
    let name = path.rsplit('/').next().map(|n| match source {
        Source::Http(_) => percent_decode(n),
        Source::Local(_) => n.to_string(),
    });
    match name {
        Some(name) if !name.is_empty() && name != "." && name != ".." => Ok(name),
        _ => Err(FetchError::InvalidUri {
            uri: value.trim_start().to_string(),
            reason: "cannot derive a file name from the URI (set output_file)".into(),
        }),
    }
}

/// URL paths arrive percent-encoded (`ü` as `%C3%BC`); the sandbox file should
/// carry the real name. Anything that would not decode to a plain UTF-8 file
/// name is kept encoded.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        if bytes[i] == b'%'
            && let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(d) if !d.contains('/') && !d.contains('\0') => d,
        _ => s.to_string(),
    }
}

/// Checks an `output_file`: a relative path inside the sandbox, possibly with
/// subdirectories, never escaping it.
pub fn output_components(uri: &str, output_file: &str) -> Result<Vec<String>, FetchError> {
    let invalid = |reason: &str| FetchError::InvalidUri {
        uri: uri.trim_start().to_string(),
        reason: format!("output_file '{output_file}' {reason}"),
    };
    if output_file.starts_with('/') {
        return Err(invalid("must be a relative path inside the sandbox"));
    }
    let mut comps = Vec::new();
    for comp in output_file.split('/') {
        match comp {
            "" | "." => {}
            ".." => return Err(invalid("escapes the sandbox")),
            c => comps.push(c.to_string()),
        }
    }
    if comps.is_empty() {
        return Err(invalid("names no file"));
    }
    Ok(comps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_resolve_like_mesos() {
        assert!(matches!(
            resolve("  http://h/a.tgz", None),
            Ok(Source::Http(_))
        ));
        assert!(matches!(
            resolve("HTTPS://h/a.tgz", None),
            Ok(Source::Http(_))
        ));
        assert_eq!(
            resolve("file:///x/y", None).ok(),
            Some(Source::Local("/x/y".into()))
        );
        assert_eq!(
            resolve("/x/y", None).ok(),
            Some(Source::Local("/x/y".into()))
        );
        assert_eq!(
            resolve("a/b.tar", Some(Path::new("/fw"))).ok(),
            Some(Source::Local("/fw/a/b.tar".into()))
        );
        let err = resolve("a/b.tar", None).unwrap_err().to_string();
        assert!(err.contains("frameworks_home"), "{err}");
        let err = resolve("ftp://h/x", None).unwrap_err().to_string();
        assert_eq!(err, "fetching 'ftp://h/x': unsupported scheme 'ftp'");
        let err = resolve("hdfs://nn/x", None).unwrap_err().to_string();
        assert!(err.contains("unsupported scheme 'hdfs'"), "{err}");
    }

    #[test]
    fn basename_ignores_query_and_rejects_directories() {
        let v = "http://h/dir/app.tar.gz?token=1#frag";
        let s = resolve(v, None).unwrap();
        assert_eq!(basename(v, &s).unwrap(), "app.tar.gz");
        let v = "http://h/dir/";
        let s = resolve(v, None).unwrap();
        assert!(basename(v, &s).is_err());
        let v = "http://h/d/%C3%BCber%20app.tgz";
        let s = resolve(v, None).unwrap();
        assert_eq!(basename(v, &s).unwrap(), "über app.tgz");
        let v = "/srv/ünïcode-файл.tgz";
        let s = resolve(v, None).unwrap();
        assert_eq!(basename(v, &s).unwrap(), "ünïcode-файл.tgz");
    }

    #[test]
    fn output_file_stays_inside() {
        assert_eq!(
            output_components("u", "sub/dir/x").unwrap(),
            ["sub", "dir", "x"]
        );
        assert!(output_components("u", "../x").is_err());
        assert!(output_components("u", "a/../../x").is_err());
        assert!(output_components("u", "/etc/x").is_err());
        assert!(output_components("u", "./").is_err());
    }
}
