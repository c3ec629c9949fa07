//! HS256 JSON Web Tokens (RFC 7519), the only kind Mesos issues: string
//! claims plus an optional `exp`.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::AuthError;

type HmacSha256 = Hmac<Sha256>;

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    match HmacSha256::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// Signs `claims` (and `exp`, seconds since the epoch, when given).
pub fn sign(claims: &BTreeMap<String, String>, exp: Option<u64>, key: &[u8]) -> String {
    let mut payload = serde_json::Map::new();
    for (k, v) in claims {
        payload.insert(k.clone(), serde_json::Value::String(v.clone()));
    }
    if let Some(exp) = exp {
        payload.insert("exp".into(), serde_json::Value::from(exp));
    }
    let body = serde_json::Value::Object(payload).to_string();
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER),
        URL_SAFE_NO_PAD.encode(body)
    );
    let signature = URL_SAFE_NO_PAD.encode(mac(key, signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}

/// Verifies the signature and expiry; answers the string claims.
pub fn verify(token: &str, key: &[u8], now: u64) -> Result<BTreeMap<String, String>, AuthError> {
    let bad = |m: &str| AuthError::Token(m.to_string());
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("expected three dot-separated parts"));
    };
    let header: serde_json::Value = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or_else(|| bad("malformed header"))?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
        return Err(bad("only HS256 tokens are accepted"));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| bad("malformed signature"))?;
    let mut verifier = HmacSha256::new_from_slice(key).map_err(|_| bad("unusable key"))?;
    verifier.update(format!("{}.{payload}", token_head(token)).as_bytes());
    verifier
        .verify_slice(&signature)
        .map_err(|_| bad("signature does not match"))?;
    let payload: serde_json::Map<String, serde_json::Value> = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|p| serde_json::from_slice(&p).ok())
        .ok_or_else(|| bad("malformed payload"))?;
    if let Some(exp) = payload.get("exp") {
        let exp = exp.as_f64().ok_or_else(|| bad("'exp' is not a number"))?;
        if exp <= now as f64 {
            return Err(bad("expired"));
        }
    }
    Ok(payload
        .into_iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(s) => Some((k, s)),
            _ => None,
        })
        .collect())
}

fn token_head(token: &str) -> &str {
    token.split('.').next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let mut claims = BTreeMap::new();
        claims.insert("fid".to_string(), "f1".to_string());
        let token = sign(&claims, None, b"k");
        assert_eq!(verify(&token, b"k", 0).unwrap(), claims);
        assert!(verify(&token, b"other", 0).is_err());
        let mut tampered = token.clone();
        tampered.insert(token.find('.').unwrap() + 2, 'A');
        assert!(verify(&tampered, b"k", 0).is_err());
        let expired = sign(&claims, Some(10), b"k");
        assert!(verify(&expired, b"k", 9).is_ok());
        assert!(verify(&expired, b"k", 10).is_err());
    }
}
