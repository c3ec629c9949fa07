//! `https://` with a custom CA bundle, against a real TLS server on loopback
//! whose certificate is signed by a CA generated here.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::sync::Arc;

use common::{dirs, uri};
use tepui_fetcher::{FetchOptions, Fetcher, FetcherConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

struct Pki {
    ca_pem: String,
    leaf_der: Vec<u8>,
    leaf_key_der: Vec<u8>,
}

fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "tepui test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf_params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();
    Pki {
        ca_pem: ca.pem(),
        leaf_der: leaf.der().to_vec(),
        leaf_key_der: leaf_key.serialize_der(),
    }
}

/// Serves `body` for any path over TLS until dropped.
async fn tls_server(
    pki: &Pki,
    body: &'static [u8],
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let certs = vec![rustls::pki_types::CertificateDer::from(
        pki.leaf_der.clone(),
    )];
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(pki.leaf_key_der.clone().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(sock).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(head.as_bytes()).await;
                let _ = tls.write_all(body).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (addr, task)
}

#[tokio::test]
async fn https_needs_and_honours_the_custom_ca_bundle() {
    let pki = pki();
    let (addr, server) = tls_server(&pki, b"over tls").await;
    let d = dirs();
    let url = format!("https://127.0.0.1:{}/secure.txt", addr.port());

    let err = Fetcher::new(FetcherConfig::default())
        .unwrap()
        .fetch(&[uri(&url)], &d.sandbox, FetchOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with(&format!("fetching '{url}': ")), "{err}");
    eprintln!("without the bundle: {err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    assert!(!d.sandbox.join("secure.txt").exists());

    let bundle = d.root.join("ca.pem");
    fs::write(&bundle, &pki.ca_pem).unwrap();
    let f = Fetcher::new(FetcherConfig {
        ca_bundle: Some(bundle),
        ..FetcherConfig::default()
    })
    .unwrap();
    f.fetch(&[uri(&url)], &d.sandbox, FetchOptions::default())
        .await
        .unwrap();
    assert_eq!(fs::read(d.sandbox.join("secure.txt")).unwrap(), b"over tls");
    server.abort();
}

#[test]
fn an_unusable_ca_bundle_is_a_configuration_error() {
    let d = dirs();
    let bundle = d.root.join("empty.pem");
    fs::write(&bundle, "no certificates here\n").unwrap();
    let err = Fetcher::new(FetcherConfig {
        ca_bundle: Some(bundle.clone()),
        ..FetcherConfig::default()
    })
    .err()
    .unwrap()
    .to_string();
    assert_eq!(
        err,
        format!(
            "invalid fetcher configuration: CA bundle '{}' contains no PEM certificates",
            bundle.display()
        )
    );
    let missing = d.root.join("missing.pem");
    let err = Fetcher::new(FetcherConfig {
        ca_bundle: Some(missing),
        ..FetcherConfig::default()
    })
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("reading CA bundle"), "{err}");
}
