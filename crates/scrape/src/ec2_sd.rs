//! EC2 service discovery: `DescribeInstances` over the EC2 Query API,
//! signed with SigV4, every `refresh_interval`. Targets and `__meta_ec2_*`
//! labels follow Prometheus 2.42. A failed refresh (AWS error, network
//! down) is logged and keeps the targets of the last good one, as a broken
//! file keeps its targets in file SD.

use std::collections::HashMap;
use std::time::{Duration as StdDuration, Instant, SystemTime, UNIX_EPOCH};

use pharos_model::Labels;

use crate::config::Ec2SdConfig;
use crate::error::ScrapeError;
use crate::sigv4::{self, Credentials};
use crate::target::{ADDRESS_LABEL, TargetGroup};
use crate::xml::{self, Element};

const EC2_API_VERSION: &str = "2016-11-15";
const STS_API_VERSION: &str = "2011-06-15";
/// Separates the values of list labels, and wraps them, so a relabel regex
/// can match `.*,subnet-1,.*`.
const SEPARATOR: &str = ",";
/// No refresh may take longer than this; Prometheus bounds it by its
/// context too.
const REQUEST_TIMEOUT: StdDuration = StdDuration::from_secs(30);

pub const LABEL_AMI: &str = "__meta_ec2_ami";
pub const LABEL_ARCH: &str = "__meta_ec2_architecture";
pub const LABEL_AZ: &str = "__meta_ec2_availability_zone";
pub const LABEL_AZ_ID: &str = "__meta_ec2_availability_zone_id";
pub const LABEL_INSTANCE_ID: &str = "__meta_ec2_instance_id";
pub const LABEL_LIFECYCLE: &str = "__meta_ec2_instance_lifecycle";
pub const LABEL_STATE: &str = "__meta_ec2_instance_state";
pub const LABEL_TYPE: &str = "__meta_ec2_instance_type";
pub const LABEL_IPV6: &str = "__meta_ec2_ipv6_addresses";
pub const LABEL_OWNER_ID: &str = "__meta_ec2_owner_id";
pub const LABEL_PLATFORM: &str = "__meta_ec2_platform";
pub const LABEL_PRIMARY_SUBNET: &str = "__meta_ec2_primary_subnet_id";
pub const LABEL_PRIVATE_DNS: &str = "__meta_ec2_private_dns_name";
pub const LABEL_PRIVATE_IP: &str = "__meta_ec2_private_ip";
pub const LABEL_PUBLIC_DNS: &str = "__meta_ec2_public_dns_name";
pub const LABEL_PUBLIC_IP: &str = "__meta_ec2_public_ip";
pub const LABEL_REGION: &str = "__meta_ec2_region";
pub const LABEL_SUBNET: &str = "__meta_ec2_subnet_id";
pub const LABEL_TAG_PREFIX: &str = "__meta_ec2_tag_";
pub const LABEL_VPC: &str = "__meta_ec2_vpc_id";

/// Runs one `ec2_sd_configs` entry.
pub struct Ec2Discovery {
    region: String,
    /// `scheme://host[:port]`, no trailing slash.
    endpoint: String,
    /// The `Host` header, signed and sent.
    host: String,
    access_key: String,
    secret_key: String,
    role_arn: String,
    port: u16,
    filters: Vec<(String, Vec<String>)>,
    refresh_interval: StdDuration,
    client: reqwest::Client,
    /// Built once; a new AZ in the region needs a reload, as in Prometheus.
    az_ids: Option<HashMap<String, String>>,
    /// Credentials of the assumed role, until they expire.
    assumed: Option<(Credentials, Instant)>,
    page_size: Option<u32>,
    last_good: Option<TargetGroup>,
    last_error: Option<String>,
}

impl std::fmt::Debug for Ec2Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ec2Discovery")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// Where settings come from besides the config: the process environment in
/// production, a map in tests.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn expand(value: &str, key: &str, env: Lookup<'_>) -> Result<String, ScrapeError> {
    if !value.contains('$') {
        return Ok(value.to_owned());
    }
    pharos_config::expand_env(value, key, env)
        .map_err(|e| ScrapeError::DiscoveryConfig(format!("ec2_sd_configs {key}: {e}")))
}

fn first_set(env: Lookup<'_>, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| env(n).filter(|v| !v.is_empty()))
}

impl Ec2Discovery {
    /// Discovery for `cfg`, with settings the config leaves empty taken
    /// from the process environment.
    pub fn new(cfg: &Ec2SdConfig) -> Result<Self, ScrapeError> {
        Self::with_env(cfg, &process_env)
    }

    /// As [`Ec2Discovery::new`], reading the environment through `env`.
    pub fn with_env(cfg: &Ec2SdConfig, env: Lookup<'_>) -> Result<Self, ScrapeError> {
        let mut region = expand(&cfg.region, "region", env)?;
        if region.is_empty() {
            region = first_set(env, &["AWS_REGION", "AWS_DEFAULT_REGION"]).ok_or_else(|| {
                ScrapeError::DiscoveryConfig(
                    "EC2 SD configuration requires a region (set region, AWS_REGION or AWS_DEFAULT_REGION)"
                        .into(),
                )
            })?;
        }
        let endpoint = expand(&cfg.endpoint, "endpoint", env)?;
        let endpoint = if endpoint.is_empty() {
            format!("https://ec2.{region}.amazonaws.com")
        } else {
            endpoint.trim_end_matches('/').to_owned()
        };
        let url = reqwest::Url::parse(&endpoint).map_err(|e| {
            ScrapeError::DiscoveryConfig(format!("ec2_sd_configs endpoint {endpoint:?}: {e}"))
        })?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => {
                return Err(ScrapeError::DiscoveryConfig(format!(
                    "ec2_sd_configs endpoint {endpoint:?} has no host"
                )));
            }
        };
        let client = crate::scrape::build_client(&cfg.http_client())?;
        Ok(Ec2Discovery {
            region,
            endpoint,
            host,
            access_key: expand(&cfg.access_key, "access_key", env)?,
            secret_key: expand(cfg.secret_key.expose(), "secret_key", env)?,
            role_arn: expand(&cfg.role_arn, "role_arn", env)?,
            port: cfg.port,
            filters: cfg
                .filters
                .iter()
                .map(|f| (f.name.clone(), f.values.clone()))
                .collect(),
            refresh_interval: cfg.refresh_interval.as_std(),
            client,
            az_ids: None,
            assumed: None,
            page_size: None,
            last_good: None,
            last_error: None,
        })
    }

    /// Asks for pages of at most `n` instances (5 to 1000); Prometheus
    /// leaves the page size to AWS, so this is for tests and tuning.
    pub fn set_page_size(&mut self, n: u32) {
        self.page_size = Some(n);
    }

    pub fn refresh_interval(&self) -> StdDuration {
        self.refresh_interval
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The error of the last refresh, if it failed.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Lists the instances again. On failure the error is logged and the
    /// last good group is returned (none before the first success).
    pub async fn refresh(&mut self) -> Vec<TargetGroup> {
        match self.describe().await {
            Ok(group) => {
                self.last_error = None;
                self.last_good = Some(group);
            }
            Err(err) => {
                tracing::warn!(
                    region = %self.region,
                    error = %err,
                    "ec2_sd: refresh failed, keeping the last good targets"
                );
                self.last_error = Some(err.to_string());
            }
        }
        self.last_good.iter().cloned().collect()
    }

    /// One full listing: every page of `DescribeInstances`.
    pub async fn describe(&mut self) -> Result<TargetGroup, ScrapeError> {
        let base = base_credentials(&self.access_key, &self.secret_key, &process_env)?;
        let creds = self.credentials(base).await?;
        self.describe_with(&creds).await
    }

    async fn describe_with(&mut self, creds: &Credentials) -> Result<TargetGroup, ScrapeError> {
        if self.az_ids.is_none() {
            match self.availability_zones(creds).await {
                Ok(m) => self.az_ids = Some(m),
                Err(e) => {
                    tracing::debug!(error = %e, "ec2_sd: unable to describe availability zones")
                }
            }
        }
        let mut group = TargetGroup {
            source: self.region.clone(),
            ..TargetGroup::default()
        };
        let mut next: Option<String> = None;
        // A page limit keeps a server that always returns a token from
        // looping forever.
        for _ in 0..10_000 {
            let mut params = vec![
                ("Action".to_owned(), "DescribeInstances".to_owned()),
                ("Version".to_owned(), EC2_API_VERSION.to_owned()),
            ];
            for (i, (name, values)) in self.filters.iter().enumerate() {
                params.push((format!("Filter.{}.Name", i + 1), name.clone()));
                for (j, v) in values.iter().enumerate() {
                    params.push((format!("Filter.{}.Value.{}", i + 1, j + 1), v.clone()));
                }
            }
            if let Some(n) = self.page_size {
                params.push(("MaxResults".to_owned(), n.to_string()));
            }
            if let Some(token) = &next {
                params.push(("NextToken".to_owned(), token.clone()));
            }
            let page = self.call("ec2", &params, creds).await.map_err(|e| {
                ScrapeError::Discovery(format!("could not describe instances: {e}"))
            })?;
            for reservation in page.items("reservationSet") {
                let owner = reservation.text_of("ownerId");
                for inst in reservation.items("instancesSet") {
                    if let Some(labels) = self.instance_labels(inst, owner) {
                        group.targets.push(labels);
                    }
                }
            }
            next = page.text_of("nextToken").map(str::to_owned);
            if next.is_none() {
                return Ok(group);
            }
        }
        Err(ScrapeError::Discovery(
            "could not describe instances: too many pages".into(),
        ))
    }

    fn instance_labels(&self, inst: &Element, owner: Option<&str>) -> Option<Labels> {
        // Instances without a private IP (terminated ones, mostly) have no
        // address to scrape.
        let private_ip = inst.text_of("privateIpAddress")?;
        let mut l = Labels::new();
        let mut set = |name: &str, value: Option<&str>| {
            if let Some(v) = value {
                l.set(name, v);
            }
        };
        set(LABEL_INSTANCE_ID, inst.text_of("instanceId"));
        set(LABEL_REGION, Some(&self.region));
        set(LABEL_OWNER_ID, owner);
        set(LABEL_PRIVATE_IP, Some(private_ip));
        set(LABEL_PRIVATE_DNS, inst.text_of("privateDnsName"));
        set(ADDRESS_LABEL, Some(&join_host_port(private_ip, self.port)));
        set(LABEL_PLATFORM, inst.text_of("platform"));
        if let Some(public_ip) = inst.text_of("ipAddress") {
            set(LABEL_PUBLIC_IP, Some(public_ip));
            set(LABEL_PUBLIC_DNS, inst.text_of("dnsName"));
        }
        set(LABEL_AMI, inst.text_of("imageId"));
        let az = inst
            .child("placement")
            .and_then(|p| p.text_of("availabilityZone"));
        set(LABEL_AZ, az);
        let az_id = az.and_then(|az| self.az_ids.as_ref()?.get(az));
        set(LABEL_AZ_ID, az_id.map(String::as_str));
        set(
            LABEL_STATE,
            inst.child("instanceState").and_then(|s| s.text_of("name")),
        );
        set(LABEL_TYPE, inst.text_of("instanceType"));
        set(LABEL_LIFECYCLE, inst.text_of("instanceLifecycle"));
        set(LABEL_ARCH, inst.text_of("architecture"));
        if let Some(vpc) = inst.text_of("vpcId") {
            set(LABEL_VPC, Some(vpc));
            set(LABEL_PRIMARY_SUBNET, inst.text_of("subnetId"));
            let mut subnets: Vec<&str> = Vec::new();
            let mut ipv6: Vec<&str> = Vec::new();
            for eni in inst.items("networkInterfaceSet") {
                let Some(subnet) = eni.text_of("subnetId") else {
                    continue;
                };
                // Deduplicated, in the order EC2 lists the interfaces.
                if !subnets.contains(&subnet) {
                    subnets.push(subnet);
                }
                ipv6.extend(
                    eni.items("ipv6AddressesSet")
                        .filter_map(|a| a.text_of("ipv6Address")),
                );
            }
            set(LABEL_SUBNET, Some(&wrap_list(&subnets)));
            if !ipv6.is_empty() {
                set(LABEL_IPV6, Some(&wrap_list(&ipv6)));
            }
        }
        for tag in inst.items("tagSet") {
            let (Some(key), Some(value)) = (
                tag.child("key").map(|k| k.text.as_str()),
                tag.child("value").map(|v| v.text.as_str()),
            ) else {
                continue;
            };
            set(
                &format!("{LABEL_TAG_PREFIX}{}", sanitize_label_name(key)),
                Some(value),
            );
        }
        Some(l)
    }

    async fn availability_zones(
        &self,
        creds: &Credentials,
    ) -> Result<HashMap<String, String>, String> {
        let params = [
            ("Action".to_owned(), "DescribeAvailabilityZones".to_owned()),
            ("Version".to_owned(), EC2_API_VERSION.to_owned()),
        ];
        let doc = self.call("ec2", &params, creds).await?;
        Ok(doc
            .items("availabilityZoneInfo")
            .filter_map(|z| {
                Some((
                    z.text_of("zoneName")?.to_owned(),
                    z.text_of("zoneId")?.to_owned(),
                ))
            })
            .collect())
    }

    /// The credentials of this refresh: `base` (the config's keys, else
    /// the standard environment variables), or with `role_arn` those of the
    /// role they assume.
    async fn credentials(&mut self, base: Credentials) -> Result<Credentials, ScrapeError> {
        if self.role_arn.is_empty() {
            return Ok(base);
        }
        if let Some((creds, until)) = &self.assumed
            && Instant::now() < *until
        {
            return Ok(creds.clone());
        }
        let (creds, until) = self.assume_role(&base).await?;
        self.assumed = Some((creds.clone(), until));
        Ok(creds)
    }

    /// STS `AssumeRole`, on the same endpoint as EC2 when one is set (as
    /// Prometheus' AWS session does), else the regional STS endpoint.
    async fn assume_role(&self, base: &Credentials) -> Result<(Credentials, Instant), ScrapeError> {
        let params = [
            ("Action".to_owned(), "AssumeRole".to_owned()),
            ("Version".to_owned(), STS_API_VERSION.to_owned()),
            ("RoleArn".to_owned(), self.role_arn.clone()),
            ("RoleSessionName".to_owned(), format!("pharos-{}", now_ms())),
        ];
        let doc = self.call("sts", &params, base).await.map_err(|e| {
            ScrapeError::Discovery(format!("could not assume role {}: {e}", self.role_arn))
        })?;
        let c = doc
            .path(&["AssumeRoleResult", "Credentials"])
            .ok_or_else(|| {
                ScrapeError::Discovery("AssumeRole response without credentials".into())
            })?;
        let (Some(id), Some(secret)) = (c.text_of("AccessKeyId"), c.text_of("SecretAccessKey"))
        else {
            return Err(ScrapeError::Discovery(
                "AssumeRole response without access keys".into(),
            ));
        };
        // Refreshed a minute early; the API grants at least 15 minutes.
        let until = Instant::now() + StdDuration::from_secs(14 * 60);
        Ok((
            Credentials {
                access_key_id: id.to_owned(),
                secret_access_key: secret.to_owned(),
                session_token: c.text_of("SessionToken").map(str::to_owned),
            },
            until,
        ))
    }

    fn endpoint_is_default(&self) -> bool {
        self.endpoint == format!("https://ec2.{}.amazonaws.com", self.region)
    }

    /// One signed Query API call; the parsed response or the AWS error.
    async fn call(
        &self,
        service: &str,
        params: &[(String, String)],
        creds: &Credentials,
    ) -> Result<Element, String> {
        let body = sigv4::canonical_query(params);
        let (url, host) = if service == "sts" && self.endpoint_is_default() {
            let h = format!("sts.{}.amazonaws.com", self.region);
            (format!("https://{h}/"), h)
        } else {
            (format!("{}/", self.endpoint), self.host.clone())
        };
        let headers = [
            (
                "content-type".to_owned(),
                "application/x-www-form-urlencoded; charset=utf-8".to_owned(),
            ),
            ("host".to_owned(), host),
        ];
        let req = sigv4::Request {
            method: "POST",
            path: "/",
            query: &[],
            headers: &headers,
            payload: body.as_bytes(),
        };
        let signed = sigv4::sign(
            &req,
            creds,
            &self.region,
            service,
            &sigv4::amz_date(now_ms()),
        );
        let mut rb = self.client.post(&url).body(body.clone());
        for (k, v) in headers.iter().chain(signed.headers.iter()) {
            rb = rb.header(k.as_str(), v.as_str());
        }
        let work = async {
            let resp = rb
                .send()
                .await
                .map_err(|e| crate::scrape::error_chain(&e))?;
            let status = resp.status();
            let text = resp
                .text()
                .await
                .map_err(|e| crate::scrape::error_chain(&e))?;
            if !status.is_success() {
                return Err(aws_error(status, &text));
            }
            xml::parse(&text).map_err(|e| e.to_string())
        };
        tokio::time::timeout(REQUEST_TIMEOUT, work)
            .await
            .unwrap_or_else(|_| Err(format!("no answer from {url} within {REQUEST_TIMEOUT:?}")))
    }
}

fn base_credentials(
    access_key: &str,
    secret_key: &str,
    env: Lookup<'_>,
) -> Result<Credentials, ScrapeError> {
    if !access_key.is_empty() && !secret_key.is_empty() {
        return Ok(Credentials {
            access_key_id: access_key.to_owned(),
            secret_access_key: secret_key.to_owned(),
            session_token: None,
        });
    }
    match (
        first_set(env, &["AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY"]),
        first_set(env, &["AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY"]),
    ) {
        (Some(id), Some(secret)) => Ok(Credentials {
            access_key_id: id,
            secret_access_key: secret,
            session_token: first_set(env, &["AWS_SESSION_TOKEN"]),
        }),
        _ => Err(ScrapeError::Discovery(
            "no AWS credentials: set access_key and secret_key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                .into(),
        )),
    }
}

/// An AWS error response (`<Errors><Error><Code>..<Message>..`, or STS'
/// `<ErrorResponse><Error>..`) as one line.
fn aws_error(status: reqwest::StatusCode, body: &str) -> String {
    let parsed = xml::parse(body).ok();
    let error = parsed.as_ref().and_then(|doc| {
        doc.path(&["Errors", "Error"])
            .or_else(|| doc.child("Error"))
            .or_else(|| (doc.name == "Error").then_some(doc))
    });
    match error {
        Some(e) => format!(
            "{}: {} (HTTP {})",
            e.text_of("Code").unwrap_or("Unknown"),
            e.text_of("Message").unwrap_or(""),
            status.as_u16()
        ),
        None => {
            let snippet: String = body.chars().take(200).collect();
            format!("HTTP {}: {}", status.as_u16(), snippet.trim())
        }
    }
}

fn wrap_list(values: &[&str]) -> String {
    format!("{SEPARATOR}{}{SEPARATOR}", values.join(SEPARATOR))
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Every character outside `[a-zA-Z0-9_]` becomes `_`, as Prometheus
/// sanitises tag keys into label names.
pub fn sanitize_label_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn cfg(yaml: &str) -> Ec2SdConfig {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn region_endpoint_and_variables() {
        let e = env(&[
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("EP", "http://127.0.0.1:5000/"),
        ]);
        let d = Ec2Discovery::with_env(&cfg("port: 9100"), &e).unwrap();
        assert_eq!(d.region, "eu-west-1");
        assert_eq!(d.endpoint, "https://ec2.eu-west-1.amazonaws.com");
        assert_eq!(d.host, "ec2.eu-west-1.amazonaws.com");
        let d = Ec2Discovery::with_env(
            &cfg("region: '${R:-us-east-2}'\nendpoint: '${EP}'\naccess_key: '${AK:-x}'"),
            &e,
        )
        .unwrap();
        assert_eq!(d.region, "us-east-2");
        assert_eq!(d.endpoint, "http://127.0.0.1:5000");
        assert_eq!(d.host, "127.0.0.1:5000");
        assert_eq!(d.access_key, "x");
        let err = Ec2Discovery::with_env(&cfg("port: 1"), &env(&[])).unwrap_err();
        assert!(err.to_string().contains("requires a region"), "{err}");
        let err = Ec2Discovery::with_env(&cfg("region: '${NOPE}'"), &env(&[])).unwrap_err();
        assert!(err.to_string().contains("NOPE"), "{err}");
        let err = Ec2Discovery::with_env(&cfg("region: r\nendpoint: 'not a url'"), &env(&[]))
            .unwrap_err();
        assert!(err.to_string().contains("endpoint"), "{err}");
    }

    #[test]
    fn credentials_from_config_then_env() {
        let c = base_credentials("AK", "SK", &env(&[("AWS_ACCESS_KEY_ID", "E")])).unwrap();
        assert_eq!(c.access_key_id, "AK");
        assert_eq!(c.session_token, None);
        let c = base_credentials(
            "",
            "",
            &env(&[
                ("AWS_ACCESS_KEY_ID", "E"),
                ("AWS_SECRET_ACCESS_KEY", "S"),
                ("AWS_SESSION_TOKEN", "T"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (c.access_key_id.as_str(), c.secret_access_key.as_str()),
            ("E", "S")
        );
        assert_eq!(c.session_token.as_deref(), Some("T"));
        let err = base_credentials("", "", &env(&[("AWS_ACCESS_KEY_ID", "E")])).unwrap_err();
        assert!(err.to_string().contains("no AWS credentials"), "{err}");
    }

    #[test]
    fn instance_labels_follow_prometheus() {
        let doc = xml::parse(
            r#"<DescribeInstancesResponse><reservationSet><item><ownerId>111</ownerId><instancesSet>
<item>
  <instanceId>i-1</instanceId><imageId>ami-1</imageId>
  <instanceState><code>16</code><name>running</name></instanceState>
  <privateDnsName>ip-10-0-0-1.ec2.internal</privateDnsName><dnsName>ec2-1.compute.amazonaws.com</dnsName>
  <instanceType>t3.micro</instanceType>
  <placement><availabilityZone>us-east-1a</availabilityZone></placement>
  <platform>windows</platform><subnetId>subnet-a</subnetId><vpcId>vpc-1</vpcId>
  <privateIpAddress>10.0.0.1</privateIpAddress><ipAddress>1.2.3.4</ipAddress>
  <architecture>x86_64</architecture><instanceLifecycle>spot</instanceLifecycle>
  <tagSet><item><key>Name</key><value>web</value></item><item><key>team/owner-x</key><value>ops</value></item></tagSet>
  <networkInterfaceSet>
    <item><subnetId>subnet-a</subnetId><ipv6AddressesSet><item><ipv6Address>2001:db8::1</ipv6Address></item></ipv6AddressesSet></item>
    <item><subnetId>subnet-b</subnetId><ipv6AddressesSet><item><ipv6Address>2001:db8::2</ipv6Address></item></ipv6AddressesSet></item>
    <item><subnetId>subnet-a</subnetId></item>
  </networkInterfaceSet>
</item>
<item><instanceId>i-gone</instanceId><instanceState><name>terminated</name></instanceState></item>
<item><instanceId>i-2</instanceId><privateIpAddress>10.0.0.2</privateIpAddress><dnsName/></item>
</instancesSet></item></reservationSet></DescribeInstancesResponse>"#,
        )
        .unwrap();
        let mut d =
            Ec2Discovery::with_env(&cfg("region: us-east-1\nport: 9100"), &env(&[])).unwrap();
        d.az_ids = Some(HashMap::from([("us-east-1a".into(), "use1-az1".into())]));
        let res = doc.items("reservationSet").next().unwrap();
        let labels: Vec<Labels> = res
            .items("instancesSet")
            .filter_map(|i| d.instance_labels(i, res.text_of("ownerId")))
            .collect();
        assert_eq!(
            labels.len(),
            2,
            "the instance without a private IP is skipped"
        );
        let l = &labels[0];
        let want = [
            (ADDRESS_LABEL, "10.0.0.1:9100"),
            (LABEL_AMI, "ami-1"),
            (LABEL_ARCH, "x86_64"),
            (LABEL_AZ, "us-east-1a"),
            (LABEL_AZ_ID, "use1-az1"),
            (LABEL_INSTANCE_ID, "i-1"),
            (LABEL_LIFECYCLE, "spot"),
            (LABEL_STATE, "running"),
            (LABEL_TYPE, "t3.micro"),
            (LABEL_IPV6, ",2001:db8::1,2001:db8::2,"),
            (LABEL_OWNER_ID, "111"),
            (LABEL_PLATFORM, "windows"),
            (LABEL_PRIMARY_SUBNET, "subnet-a"),
            (LABEL_PRIVATE_DNS, "ip-10-0-0-1.ec2.internal"),
            (LABEL_PRIVATE_IP, "10.0.0.1"),
            (LABEL_PUBLIC_DNS, "ec2-1.compute.amazonaws.com"),
            (LABEL_PUBLIC_IP, "1.2.3.4"),
            (LABEL_REGION, "us-east-1"),
            (LABEL_SUBNET, ",subnet-a,subnet-b,"),
            ("__meta_ec2_tag_Name", "web"),
            ("__meta_ec2_tag_team_owner_x", "ops"),
            (LABEL_VPC, "vpc-1"),
        ];
        assert_eq!(l, &Labels::from_pairs(want), "{l:?}");
        let l = &labels[1];
        assert_eq!(l.get(ADDRESS_LABEL), Some("10.0.0.2:9100"));
        // No VPC: no subnet list; no public IP: no public DNS.
        assert_eq!(l.get(LABEL_SUBNET), None);
        assert_eq!(l.get(LABEL_PUBLIC_DNS), None);
        assert_eq!(l.get(LABEL_AZ_ID), None);
    }

    #[test]
    fn aws_errors_read_as_one_line() {
        let body = "<?xml version=\"1.0\"?><Response><Errors><Error><Code>AuthFailure</Code><Message>bad key</Message></Error></Errors><RequestID>x</RequestID></Response>";
        assert_eq!(
            aws_error(reqwest::StatusCode::UNAUTHORIZED, body),
            "AuthFailure: bad key (HTTP 401)"
        );
        let sts = "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>no</Message></Error></ErrorResponse>";
        assert_eq!(
            aws_error(reqwest::StatusCode::FORBIDDEN, sts),
            "AccessDenied: no (HTTP 403)"
        );
        assert_eq!(
            aws_error(reqwest::StatusCode::BAD_GATEWAY, "proxy down"),
            "HTTP 502: proxy down"
        );
    }

    #[test]
    fn sanitizes_and_joins() {
        assert_eq!(
            sanitize_label_name("aws:autoscaling:group-name"),
            "aws_autoscaling_group_name"
        );
        assert_eq!(sanitize_label_name("é"), "_");
        assert_eq!(join_host_port("10.0.0.1", 80), "10.0.0.1:80");
        assert_eq!(join_host_port("::1", 80), "[::1]:80");
    }
}
