//! Errors: HTTP-facing API errors (status + message, as Mesos answers in
//! plain text) and the daemon's startup errors.

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }
}

impl From<tepui_proto::content::ContentError> for ApiError {
    fn from(e: tepui_proto::content::ContentError) -> Self {
        ApiError::new(e.status(), e.to_string())
    }
}

impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        let status = axum::http::StatusCode::from_u16(self.status)
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, self.message).into_response();
        if self.status == 401 {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_str(&tepui_proto::auth::challenge())
                    .unwrap_or(axum::http::HeaderValue::from_static("Basic")),
            );
        }
        response
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("registry: {0}")]
    Registry(#[from] crate::registry::RegistryError),
    #[error("server: {0}")]
    Serve(#[source] std::io::Error),
    #[error("zookeeper: {0}")]
    Zk(#[from] tepui_proto::zk::ZkError),
    #[error("TLS: {0}")]
    Tls(#[from] tepui_proto::tls::TlsError),
    #[error("no longer the leading master: {0}")]
    Deposed(String),
}
