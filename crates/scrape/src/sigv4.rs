//! AWS Signature Version 4 for the few AWS Query API calls service
//! discovery makes, with HMAC-SHA256 built on `sha2` so no AWS SDK is
//! pulled in.

use sha2::{Digest, Sha256};

/// The credentials a request is signed with.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Set for temporary credentials; sent as `X-Amz-Security-Token`.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    // The secret and the token never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<secret>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<secret>"),
            )
            .finish()
    }
}

/// One request to sign. `headers` must hold every header to be signed,
/// `host` included; the signer adds `x-amz-date` (and the session token).
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The URI path, already URI-encoded (`/` for the Query API).
    pub path: &'a str,
    /// Query parameters, not encoded.
    pub query: &'a [(String, String)],
    pub headers: &'a [(String, String)],
    pub payload: &'a [u8],
}

/// What signing adds to the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The headers to send besides those of the request: `x-amz-date`,
    /// `x-amz-security-token` when there is one, and `authorization`.
    pub headers: Vec<(String, String)>,
    /// The hex signature, for tests.
    pub signature: String,
}

/// SHA-256 of `data`, lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(data);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// URI-encodes per SigV4: every byte but `A-Za-z0-9-_.~` as `%XX`.
pub fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parameters as a canonical query string or form body: encoded, sorted by
/// name then value, joined with `&`.
pub fn canonical_query(params: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// `YYYYMMDDTHHMMSSZ` for epoch milliseconds.
pub fn amz_date(epoch_ms: i64) -> String {
    // "2015-08-30T12:36:00.000Z" -> "20150830T123600Z"
    let rfc = pharos_core::time::rfc3339_millis(epoch_ms);
    let mut out: String = rfc
        .chars()
        .take(19)
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    out.push('Z');
    out
}

/// Signs `req` for `service` in `region` at `amz_date`
/// (`YYYYMMDDTHHMMSSZ`).
pub fn sign(
    req: &Request<'_>,
    creds: &Credentials,
    region: &str,
    service: &str,
    amz_date: &str,
) -> Signed {
    let date = amz_date.get(..8).unwrap_or(amz_date);
    let mut extra = vec![("x-amz-date".to_owned(), amz_date.to_owned())];
    if let Some(token) = &creds.session_token {
        extra.push(("x-amz-security-token".to_owned(), token.clone()));
    }
    let mut headers: Vec<(String, String)> = req
        .headers
        .iter()
        .chain(extra.iter())
        .map(|(k, v)| (k.to_ascii_lowercase(), collapse_spaces(v)))
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        req.method,
        req.path,
        canonical_query(req.query),
        sha256_hex(req.payload)
    );
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let key = signing_key(&creds.secret_access_key, date, region, service);
    let signature = hex(&hmac_sha256(&key, string_to_sign.as_bytes()));
    extra.push((
        "authorization".to_owned(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            creds.access_key_id
        ),
    ));
    Signed {
        headers: extra,
        signature,
    }
}

/// The key derived for one day, region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

/// Header values are trimmed and inner runs of spaces collapse to one.
fn collapse_spaces(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_creds() -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        }
    }

    fn params(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 of RFC 4231.
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block is hashed first.
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    /// The IAM `ListUsers` GET request worked through in AWS' SigV4 docs.
    #[test]
    fn signs_the_documented_iam_example() {
        let headers = params(&[
            (
                "Content-Type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("Host", "iam.amazonaws.com"),
        ]);
        let query = params(&[("Version", "2010-05-08"), ("Action", "ListUsers")]);
        let req = Request {
            method: "GET",
            path: "/",
            query: &query,
            headers: &headers,
            payload: b"",
        };
        assert_eq!(
            hex(&signing_key(
                &example_creds().secret_access_key,
                "20150830",
                "us-east-1",
                "iam"
            )),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
        let signed = sign(
            &req,
            &example_creds(),
            "us-east-1",
            "iam",
            "20150830T123600Z",
        );
        assert_eq!(
            signed.signature,
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
        let auth = &signed.headers.last().unwrap().1;
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    /// The signed POST example of the same docs (body instead of query).
    #[test]
    fn signs_the_documented_post_example() {
        let headers = params(&[
            (
                "Content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("host", "iam.amazonaws.com"),
        ]);
        let req = Request {
            method: "POST",
            path: "/",
            query: &[],
            headers: &headers,
            payload: b"Action=ListUsers&Version=2010-05-08",
        };
        let signed = sign(
            &req,
            &example_creds(),
            "us-east-1",
            "iam",
            "20110909T233600Z",
        );
        assert_eq!(
            signed.signature,
            "ced6826de92d2bdeed8f846f0bf508e8559e98e4b0199114b84c54174deb456c"
        );
    }

    #[test]
    fn session_token_is_sent_and_signed() {
        let mut creds = example_creds();
        creds.session_token = Some("T0KEN-VALUE".into());
        let headers = params(&[("host", "h")]);
        let req = Request {
            method: "GET",
            path: "/",
            query: &[],
            headers: &headers,
            payload: b"",
        };
        let signed = sign(&req, &creds, "r", "s", "20200101T000000Z");
        assert!(
            signed
                .headers
                .contains(&("x-amz-security-token".into(), "T0KEN-VALUE".into()))
        );
        assert!(
            signed
                .headers
                .last()
                .unwrap()
                .1
                .contains("SignedHeaders=host;x-amz-date;x-amz-security-token")
        );
        assert!(!format!("{creds:?}").contains("EXAMPLEKEY"));
        assert!(!format!("{creds:?}").contains("T0KEN"));
    }

    #[test]
    fn encoding_and_dates() {
        assert_eq!(uri_encode("a b/c~d=é"), "a%20b%2Fc~d%3D%C3%A9");
        assert_eq!(
            canonical_query(&params(&[
                ("b", "2"),
                ("a", "x y"),
                ("Filter.1.Name", "tag:env")
            ])),
            "Filter.1.Name=tag%3Aenv&a=x%20y&b=2"
        );
        assert_eq!(amz_date(1_440_938_160_000), "20150830T123600Z");
    }
}
