//! The email integration over SMTP (lettre): STARTTLS when `require_tls`
//! (upstream's default), implicit TLS on port 465, PLAIN/LOGIN auth, and
//! headers and bodies rendered from the templates.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Mailboxes, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{NotifyData, NotifyError, Templates};
use crate::config::EmailConfig;

const DEFAULT_SUBJECT: &str = r#"{{ template "email.default.subject" . }}"#;
const DEFAULT_TEXT: &str = r#"{{ template "email.default.text" . }}"#;

#[derive(Debug)]
pub struct Email {
    cfg: EmailConfig,
    host: String,
    port: u16,
    /// Header name (canonical case) to its template.
    headers: BTreeMap<String, String>,
    ca: Option<Vec<u8>>,
    templates: Arc<Templates>,
}

/// `Content-Type` → `Content-Type`, `x-foo` → `X-Foo` (Go's
/// `CanonicalMIMEHeaderKey`), so a user's `subject:` overrides ours.
fn canonical(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

fn split_host_port(hp: &str) -> Result<(String, u16), String> {
    let (host, port) = hp
        .rsplit_once(':')
        .ok_or_else(|| format!("smarthost {hp:?} has no port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port
        .parse()
        .map_err(|_| format!("smarthost {hp:?} has an invalid port"))?;
    Ok((host.to_owned(), port))
}

impl Email {
    pub fn new(cfg: &EmailConfig, templates: Arc<Templates>) -> Result<Self, String> {
        let (host, port) = split_host_port(&cfg.smarthost.0)?;
        let mut headers: BTreeMap<String, String> = cfg
            .headers
            .iter()
            .map(|(k, v)| (canonical(k), v.clone()))
            .collect();
        headers
            .entry("Subject".into())
            .or_insert_with(|| DEFAULT_SUBJECT.into());
        headers.entry("To".into()).or_insert_with(|| cfg.to.clone());
        headers
            .entry("From".into())
            .or_insert_with(|| cfg.from.clone());
        let tls = &cfg.tls_config;
        let ca = if !tls.ca_file.is_empty() {
            Some(
                std::fs::read(&tls.ca_file)
                    .map_err(|e| format!("cannot read {}: {e}", tls.ca_file))?,
            )
        } else if !tls.ca.is_empty() {
            Some(tls.ca.clone().into_bytes())
        } else {
            None
        };
        if !cfg.auth_secret.is_empty() && cfg.auth_password.is_empty() {
            tracing::warn!("CRAM-MD5 (auth_secret) is not implemented yet in pharos");
        }
        Ok(Email {
            cfg: cfg.clone(),
            host,
            port,
            headers,
            ca,
            templates,
        })
    }

    /// The message as it would be sent, for tests and for `send`.
    pub fn message(&self, d: &NotifyData) -> Result<Message, NotifyError> {
        let data = d.template_value();
        let perm = |m: String| NotifyError::Permanent(m);
        let mut b = Message::builder();
        for (name, tmpl) in &self.headers {
            let value = self.templates.text(tmpl, &data)?;
            match name.as_str() {
                "From" => {
                    let mb: Mailbox = value
                        .parse()
                        .map_err(|e| perm(format!("parse 'from' address {value:?}: {e}")))?;
                    b = b.from(mb);
                }
                "To" => {
                    let mbs: Mailboxes = value
                        .parse()
                        .map_err(|e| perm(format!("parse 'to' addresses {value:?}: {e}")))?;
                    for mb in mbs {
                        b = b.to(mb);
                    }
                }
                "Subject" => b = b.subject(value),
                _ => {
                    let hn = HeaderName::new_from_ascii(name.clone())
                        .map_err(|e| perm(format!("invalid header name {name:?}: {e}")))?;
                    b = b.raw_header(HeaderValue::new(hn, value));
                }
            }
        }
        let html = match &self.cfg.html {
            Some(t) if !t.is_empty() => Some(self.templates.html(t, &data)?),
            _ => None,
        };
        // Upstream sends HTML only unless `text` is set; we also send our
        // default text part so plain-text readers get a readable mail.
        let text_tmpl = if self.cfg.text.is_empty() {
            DEFAULT_TEXT
        } else {
            &self.cfg.text
        };
        let text = self.templates.text(text_tmpl, &data)?;
        let b = b.message_id(None);
        let msg = match html {
            Some(h) => b.multipart(MultiPart::alternative_plain_html(text, h)),
            None => b.singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(text),
            ),
        };
        msg.map_err(|e| perm(format!("cannot build message: {e}")))
    }

    fn tls_params(&self) -> Result<TlsParameters, NotifyError> {
        let t = &self.cfg.tls_config;
        let name = if t.server_name.is_empty() {
            self.host.clone()
        } else {
            t.server_name.clone()
        };
        let mut p =
            TlsParameters::builder(name).dangerous_accept_invalid_certs(t.insecure_skip_verify);
        if let Some(pem) = &self.ca {
            let c = Certificate::from_pem(pem)
                .map_err(|e| NotifyError::Permanent(format!("invalid CA certificate: {e}")))?;
            p = p.add_root_certificate(c);
        }
        p.build_rustls()
            .map_err(|e| NotifyError::Permanent(format!("TLS setup failed: {e}")))
    }

    pub async fn send(&self, d: &NotifyData, timeout: Duration) -> Result<(), NotifyError> {
        let msg = self.message(d)?;
        let tls = if self.port == 465 {
            Tls::Wrapper(self.tls_params()?)
        } else if self.cfg.require_tls.unwrap_or(true) {
            Tls::Required(self.tls_params()?)
        } else {
            Tls::None
        };
        let hello = if self.cfg.hello.is_empty() {
            "localhost".to_owned()
        } else {
            self.cfg.hello.clone()
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.clone())
            .port(self.port)
            .tls(tls)
            .hello_name(ClientId::Domain(hello))
            .timeout(Some(timeout));
        if !self.cfg.auth_username.is_empty() {
            let pass = if self.cfg.auth_password_file.is_empty() {
                self.cfg.auth_password.expose().to_owned()
            } else {
                std::fs::read_to_string(&self.cfg.auth_password_file)
                    .map(|s| s.trim().to_owned())
                    .map_err(|e| {
                        NotifyError::Permanent(format!(
                            "cannot read {}: {e}",
                            self.cfg.auth_password_file
                        ))
                    })?
            };
            b = b
                .credentials(Credentials::new(self.cfg.auth_username.clone(), pass))
                .authentication(vec![Mechanism::Plain, Mechanism::Login]);
        }
        let transport = b.build();
        match tokio::time::timeout(timeout, transport.send(msg)).await {
            Err(_) => Err(NotifyError::Retryable("SMTP send timed out".into())),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if e.is_permanent() => Err(NotifyError::Permanent(format!("smtp: {e}"))),
            Ok(Err(e)) => Err(NotifyError::Retryable(format!("smtp: {e}"))),
        }
    }
}
