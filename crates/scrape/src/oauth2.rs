//! The OAuth 2.0 client credentials grant of a scrape config's `oauth2`:
//! a token is fetched from `token_url`, cached until ten seconds before it
//! expires (as Go's `oauth2` package does), and sent as
//! `Authorization: <type> <token>` on every scrape.

use std::time::{Duration as StdDuration, Instant};

use serde::Deserialize;

use crate::config::{HttpClientConfig, OAuth2};
use crate::error::ScrapeError;

/// How long before its expiry a token is replaced.
const EXPIRY_MARGIN: StdDuration = StdDuration::from_secs(10);

#[derive(Debug, Clone)]
struct Token {
    kind: String,
    access_token: String,
    /// `None`: the server gave no lifetime, so it is kept.
    expires: Option<Instant>,
}

/// How the client authenticates to the token endpoint. Go's client tries
/// the Basic header first and falls back to form fields, remembering what
/// worked; so does this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthStyle {
    Unknown,
    Header,
    Params,
}

/// A token source shared by a pool's scrapes.
#[derive(Debug)]
pub struct TokenSource {
    cfg: OAuth2,
    client: reqwest::Client,
    state: tokio::sync::Mutex<(Option<Token>, AuthStyle)>,
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

impl TokenSource {
    pub fn new(cfg: &OAuth2) -> Result<Self, ScrapeError> {
        let http = HttpClientConfig {
            tls_config: cfg.tls_config.clone(),
            proxy_url: cfg.proxy_url.clone(),
            follow_redirects: true,
            ..HttpClientConfig::default()
        };
        Ok(TokenSource {
            cfg: cfg.clone(),
            client: crate::scrape::build_client(&http)?,
            state: tokio::sync::Mutex::new((None, AuthStyle::Unknown)),
        })
    }

    /// The `Authorization` header value, fetching a token when none is
    /// cached or it is about to expire.
    pub async fn header(&self) -> Result<String, String> {
        let mut state = self.state.lock().await;
        if let Some(t) = &state.0
            && t.expires.is_none_or(|e| Instant::now() + EXPIRY_MARGIN < e)
        {
            return Ok(format!("{} {}", t.kind, t.access_token));
        }
        let secret = match &self.cfg.client_secret_file {
            Some(path) => std::fs::read_to_string(path)
                .map(|s| s.trim().to_owned())
                .map_err(|e| format!("oauth2: unable to read client secret file {path}: {e}"))?,
            None => self.cfg.client_secret.expose().to_owned(),
        };
        let styles = match state.1 {
            AuthStyle::Unknown => vec![AuthStyle::Header, AuthStyle::Params],
            known => vec![known],
        };
        let mut last_err = String::new();
        for style in styles {
            match self.fetch(style, &secret).await {
                Ok(token) => {
                    state.1 = style;
                    let header = format!("{} {}", token.kind, token.access_token);
                    state.0 = Some(token);
                    return Ok(header);
                }
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
    }

    async fn fetch(&self, style: AuthStyle, secret: &str) -> Result<Token, String> {
        let mut form: Vec<(String, String)> =
            vec![("grant_type".into(), "client_credentials".into())];
        if !self.cfg.scopes.is_empty() {
            form.push(("scope".into(), self.cfg.scopes.join(" ")));
        }
        for (k, v) in &self.cfg.endpoint_params {
            form.push((k.clone(), v.clone()));
        }
        let mut req = self.client.post(&self.cfg.token_url);
        if style == AuthStyle::Params {
            form.push(("client_id".into(), self.cfg.client_id.clone()));
            form.push(("client_secret".into(), secret.to_owned()));
        } else {
            // RFC 6749 2.3.1: both halves form-encoded before Basic.
            req = req.basic_auth(form_encode(&self.cfg.client_id), Some(form_encode(secret)));
        }
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter())
            .finish();
        let started = Instant::now();
        let resp = req
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "oauth2: cannot fetch token: {}",
                    crate::scrape::error_chain(&e)
                )
            })?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| {
            format!(
                "oauth2: cannot fetch token: {}",
                crate::scrape::error_chain(&e)
            )
        })?;
        if !status.is_success() {
            let snippet: String = text.chars().take(200).collect();
            return Err(format!(
                "oauth2: cannot fetch token: {} {}: {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or(""),
                snippet.trim()
            ));
        }
        let parsed: TokenResponse = serde_json::from_str(&text)
            .map_err(|e| format!("oauth2: cannot parse token response: {e}"))?;
        if parsed.access_token.is_empty() {
            return Err("oauth2: server response missing access_token".into());
        }
        let lifetime = match parsed.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .filter(|s| *s > 0);
        Ok(Token {
            kind: token_type(&parsed.token_type),
            access_token: parsed.access_token,
            expires: lifetime.map(|s| started + StdDuration::from_secs(s)),
        })
    }
}

fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The header scheme for a `token_type`, normalised as Go's `oauth2` does.
fn token_type(t: &str) -> String {
    if t.is_empty() || t.eq_ignore_ascii_case("bearer") {
        "Bearer".into()
    } else if t.eq_ignore_ascii_case("mac") {
        "MAC".into()
    } else if t.eq_ignore_ascii_case("basic") {
        "Basic".into()
    } else {
        t.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_types_are_normalised() {
        assert_eq!(token_type(""), "Bearer");
        assert_eq!(token_type("bearer"), "Bearer");
        assert_eq!(token_type("mac"), "MAC");
        assert_eq!(token_type("DPoP"), "DPoP");
        assert_eq!(form_encode("a b&c"), "a+b%26c");
    }
}
