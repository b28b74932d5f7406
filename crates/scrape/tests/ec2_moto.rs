//! EC2 service discovery against moto, a real implementation of the EC2,
//! IAM and STS Query APIs, started on a loopback port. moto runs with
//! request authentication on, so every call of ours must carry a SigV4
//! signature it accepts.
//!
//! Skipped with a loud message when moto cannot be imported; with `CI` set
//! that fails the test instead, so CI cannot silently lose it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pharos_config::Secret;
use pharos_model::{Labels, Sample};
use pharos_scrape::PrometheusConfig;
use pharos_scrape::config::{Ec2Filter, Ec2SdConfig};
use pharos_scrape::ec2_sd::Ec2Discovery;
use pharos_scrape::scrape::{ScrapeManager, ScrapeSink, TargetHealth};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const REGION: &str = "us-east-1";

fn moto_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import moto.server, boto3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let msg = "moto cannot be imported: pip install 'moto[server]' boto3 to run this test";
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("!!! SKIPPED ec2 discovery tests: {msg}");
    }
    ok
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A moto server with an IAM user whose keys sign every request.
struct Moto {
    child: Option<Child>,
    port: u16,
    key: String,
    secret: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

const PRELUDE: &str = r#"
import boto3, json, sys
E, K, S = sys.argv[1], sys.argv[2], sys.argv[3]
kw = dict(endpoint_url=E, region_name='us-east-1')
ec2 = boto3.client('ec2', aws_access_key_id=K, aws_secret_access_key=S, **kw)
def launch(n, tags):
    ami = ec2.describe_images()['Images'][0]['ImageId']
    out = []
    # One reservation each, so pages (counted in reservations) split them.
    for _ in range(n):
        r = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType='t3.micro',
            TagSpecifications=[{'ResourceType': 'instance',
                'Tags': [{'Key': k, 'Value': v} for k, v in tags.items()]}])
        i = r['Instances'][0]
        out.append({'id': i['InstanceId'], 'ip': i['PrivateIpAddress'],
            'az': i['Placement']['AvailabilityZone'], 'subnet': i.get('SubnetId'),
            'vpc': i.get('VpcId'), 'ami': i['ImageId'], 'owner': r['OwnerId']})
    return out
"#;

impl Moto {
    fn start() -> Moto {
        let port = free_port();
        // The first three calls (the IAM setup below) go unauthenticated;
        // every later one must be signed by a known key.
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "3")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        let mut moto = Moto {
            child: Some(child),
            port,
            key: "setup".into(),
            secret: "setup".into(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        let keys = moto.py(r#"
iam = boto3.client('iam', aws_access_key_id='x', aws_secret_access_key='x', **kw)
iam.create_user(UserName='sd')
iam.put_user_policy(UserName='sd', PolicyName='all', PolicyDocument=json.dumps(
    {'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Action': '*', 'Resource': '*'}]}))
k = iam.create_access_key(UserName='sd')['AccessKey']
print(json.dumps([k['AccessKeyId'], k['SecretAccessKey']]))
"#);
        moto.key = keys[0].as_str().unwrap().to_owned();
        moto.secret = keys[1].as_str().unwrap().to_owned();
        moto
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Runs Python with `ec2` and `launch` defined; it prints one JSON value.
    fn py(&self, code: &str) -> Value {
        let out = Command::new("python3")
            .arg("-c")
            .arg(format!("{PRELUDE}\n{code}"))
            .args([self.url(), self.key.clone(), self.secret.clone()])
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "python failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("python printed JSON")
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn sd_config(&self, filters: &[(&str, &str)]) -> Ec2SdConfig {
        Ec2SdConfig {
            region: REGION.into(),
            endpoint: self.url(),
            access_key: self.key.clone(),
            secret_key: Secret::new(self.secret.clone()),
            port: 9100,
            filters: filters
                .iter()
                .map(|(n, v)| Ec2Filter {
                    name: (*n).into(),
                    values: vec![(*v).into()],
                })
                .collect(),
            ..Ec2SdConfig::default()
        }
    }
}

fn ids(targets: &[Labels]) -> BTreeSet<String> {
    targets
        .iter()
        .map(|t| t.get("__meta_ec2_instance_id").unwrap().to_owned())
        .collect()
}

fn launched_ids(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovers_filters_paginates_and_follows_changes() {
    if !moto_available() {
        return;
    }
    let mut moto = Moto::start();
    let prod = moto
        .py("print(json.dumps(launch(7, {'env': 'prod', 'Name': 'web', 'team:owner-x': 'ops'})))");
    let dev = moto.py("print(json.dumps(launch(2, {'env': 'dev'})))");
    let az_ids = moto.py(
        "print(json.dumps({z['ZoneName']: z['ZoneId'] for z in ec2.describe_availability_zones()['AvailabilityZones']}))",
    );

    let cfg = moto.sd_config(&[("tag:env", "prod"), ("instance-state-name", "running")]);
    let mut sd = Ec2Discovery::new(&cfg).unwrap();
    // Seven reservations in pages of five: the second page is only reached
    // through NextToken.
    sd.set_page_size(5);
    let groups = sd.refresh().await;
    assert_eq!(sd.last_error(), None);
    assert_eq!(groups.len(), 1);
    let targets = &groups[0].targets;
    assert_eq!(ids(targets), launched_ids(&prod));
    assert!(ids(targets).is_disjoint(&launched_ids(&dev)));

    for inst in prod.as_array().unwrap() {
        let id = inst["id"].as_str().unwrap();
        let t = targets
            .iter()
            .find(|t| t.get("__meta_ec2_instance_id") == Some(id))
            .unwrap();
        let ip = inst["ip"].as_str().unwrap();
        let az = inst["az"].as_str().unwrap();
        let subnet = inst["subnet"].as_str().unwrap();
        let want = [
            ("__address__", format!("{ip}:9100")),
            ("__meta_ec2_private_ip", ip.to_owned()),
            ("__meta_ec2_ami", inst["ami"].as_str().unwrap().to_owned()),
            ("__meta_ec2_availability_zone", az.to_owned()),
            (
                "__meta_ec2_availability_zone_id",
                az_ids[az].as_str().unwrap().to_owned(),
            ),
            ("__meta_ec2_instance_state", "running".into()),
            ("__meta_ec2_instance_type", "t3.micro".into()),
            (
                "__meta_ec2_owner_id",
                inst["owner"].as_str().unwrap().to_owned(),
            ),
            ("__meta_ec2_region", REGION.into()),
            (
                "__meta_ec2_vpc_id",
                inst["vpc"].as_str().unwrap().to_owned(),
            ),
            ("__meta_ec2_primary_subnet_id", subnet.to_owned()),
            ("__meta_ec2_subnet_id", format!(",{subnet},")),
            ("__meta_ec2_tag_env", "prod".into()),
            ("__meta_ec2_tag_Name", "web".into()),
            ("__meta_ec2_tag_team_owner_x", "ops".into()),
        ];
        for (name, value) in want {
            assert_eq!(t.get(name), Some(value.as_str()), "{name} of {t:?}");
        }
        assert!(t.get("__meta_ec2_private_dns_name").is_some(), "{t:?}");
        assert!(t.get("__meta_ec2_architecture").is_some(), "{t:?}");
    }

    // Without filters every instance is listed.
    let mut all = Ec2Discovery::new(&moto.sd_config(&[])).unwrap();
    assert_eq!(all.refresh().await[0].targets.len(), 9);

    // One instance terminated, one launched: the next refresh follows.
    let gone = prod[0]["id"].as_str().unwrap().to_owned();
    let new = moto.py(&format!(
        "ec2.terminate_instances(InstanceIds=['{gone}'])\nprint(json.dumps(launch(1, {{'env': 'prod'}})))"
    ));
    let groups = sd.refresh().await;
    let mut want = launched_ids(&prod);
    want.remove(&gone);
    want.extend(launched_ids(&new));
    assert_eq!(ids(&groups[0].targets), want);

    // A wrong secret: AWS' error is reported and nothing is discovered.
    let mut bad_cfg = moto.sd_config(&[]);
    bad_cfg.secret_key = Secret::new("wrong");
    let mut bad = Ec2Discovery::new(&bad_cfg).unwrap();
    assert!(bad.refresh().await.is_empty());
    let err = bad.last_error().unwrap();
    assert!(
        err.contains("AuthFailure") && err.contains("HTTP 401"),
        "{err}"
    );

    // A role assumed through STS signs the listing.
    moto.py(r#"
iam = boto3.client('iam', aws_access_key_id=K, aws_secret_access_key=S, **kw)
iam.create_role(RoleName='sd', AssumeRolePolicyDocument=json.dumps({'Version': '2012-10-17',
    'Statement': [{'Effect': 'Allow', 'Principal': {'AWS': '*'}, 'Action': 'sts:AssumeRole'}]}))
iam.put_role_policy(RoleName='sd', PolicyName='all', PolicyDocument=json.dumps(
    {'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Action': '*', 'Resource': '*'}]}))
print('null')
"#);
    let mut role_cfg = moto.sd_config(&[("tag:env", "prod")]);
    role_cfg.role_arn = "arn:aws:iam::123456789012:role/sd".into();
    let mut role = Ec2Discovery::new(&role_cfg).unwrap();
    let groups = role.refresh().await;
    assert_eq!(role.last_error(), None);
    assert_eq!(groups[0].targets.len(), 8);

    // The API goes away: the last good targets stay, the error is kept.
    moto.stop();
    let groups = sd.refresh().await;
    assert_eq!(ids(&groups[0].targets), want);
    assert!(
        sd.last_error()
            .unwrap()
            .starts_with("could not describe instances"),
        "{:?}",
        sd.last_error()
    );
}

#[derive(Default)]
struct Collect {
    series: Mutex<Vec<(Labels, Sample)>>,
}

impl ScrapeSink for Collect {
    fn append(&self, series: Vec<(Labels, Vec<Sample>)>) -> Result<(), String> {
        let mut all = self.series.lock().unwrap();
        for (l, samples) in series {
            all.extend(samples.into_iter().map(|s| (l.clone(), s)));
        }
        Ok(())
    }

    fn set_metadata(&self, _: &str, _: &str, _: &str, _: &str) {}
}

impl Collect {
    fn has(&self, f: impl Fn(&Labels, &Sample) -> bool) -> bool {
        self.series.lock().unwrap().iter().any(|(l, s)| f(l, s))
    }
}

/// A loopback metrics endpoint answering `up_metric 1`.
async fn metrics_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = "from_ec2 1\n";
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(body.as_bytes()).await;
            });
        }
    });
    port
}

async fn wait_for(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manager_scrapes_ec2_targets_and_follows_refreshes() {
    if !moto_available() {
        return;
    }
    let moto = Moto::start();
    let port = metrics_server().await;
    let first = moto.py(&format!(
        "print(json.dumps(launch(2, {{'env': 'prod', 'scrape_port': '{port}'}})))"
    ));
    // The instances' private addresses are not reachable from here: the
    // relabeling sends every scrape to the loopback server, naming the
    // instance by its id.
    let yaml = format!(
        r#"
scrape_configs:
  - job_name: ec2
    scrape_interval: 100ms
    ec2_sd_configs:
      - region: {REGION}
        endpoint: {endpoint}
        access_key: '{key}'
        secret_key: '{secret}'
        port: 9100
        refresh_interval: 300ms
        filters:
          - name: tag:env
            values: [prod]
          - name: instance-state-name
            values: [running]
    relabel_configs:
      - source_labels: [__meta_ec2_tag_scrape_port]
        regex: '\d+'
        action: keep
      - source_labels: [__meta_ec2_tag_scrape_port]
        target_label: __address__
        replacement: '127.0.0.1:$1'
      - source_labels: [__meta_ec2_instance_id]
        target_label: instance
      - source_labels: [__meta_ec2_availability_zone]
        target_label: zone
"#,
        endpoint = moto.url(),
        key = moto.key,
        secret = moto.secret,
    );
    let config = PrometheusConfig::parse(&yaml, "prometheus.yml").unwrap();
    assert!(
        config.warnings().iter().all(|w| !w.contains("ec2")),
        "{:?}",
        config.warnings()
    );
    let sink = Arc::new(Collect::default());
    let manager = ScrapeManager::new(sink.clone(), 0);
    manager.apply_config(&config).unwrap();

    let up_ids = |sink: &Collect| -> BTreeSet<String> {
        sink.series
            .lock()
            .unwrap()
            .iter()
            .filter(|(l, s)| l.metric_name() == Some("from_ec2") && !s.is_stale())
            .filter_map(|(l, _)| l.get("instance").map(str::to_owned))
            .collect()
    };
    let want = launched_ids(&first);
    wait_for("both instances scraped", || up_ids(&sink) == want).await;
    let view = manager.targets();
    assert_eq!(view.active_targets.len(), 2);
    for t in &view.active_targets {
        let id = &t.labels["instance"];
        assert!(want.contains(id));
        assert_eq!(t.discovered_labels["__meta_ec2_instance_id"], *id);
        assert_eq!(t.discovered_labels["__meta_ec2_region"], REGION);
        assert!(t.discovered_labels["__address__"].ends_with(":9100"));
        assert_eq!(t.scrape_url, format!("http://127.0.0.1:{port}/metrics"));
        assert!(t.labels.contains_key("zone"));
        assert_eq!(t.health, TargetHealth::Up);
    }

    // Terminate one, launch another: the first's series go stale and the
    // new one is scraped, without a reload.
    let gone = first[0]["id"].as_str().unwrap().to_owned();
    let second = moto.py(&format!(
        "ec2.terminate_instances(InstanceIds=['{gone}'])\nprint(json.dumps(launch(1, {{'env': 'prod', 'scrape_port': '{port}'}})))"
    ));
    let new_id = second[0]["id"].as_str().unwrap().to_owned();
    wait_for("new instance scraped", || up_ids(&sink).contains(&new_id)).await;
    wait_for("terminated instance stale", || {
        sink.has(|l, s| l.get("instance") == Some(gone.as_str()) && s.is_stale())
    })
    .await;
    let active: BTreeMap<String, String> = manager
        .targets()
        .active_targets
        .iter()
        .map(|t| (t.labels["instance"].clone(), t.scrape_pool.clone()))
        .collect();
    assert_eq!(active.len(), 2, "{active:?}");
    assert!(active.contains_key(&new_id) && !active.contains_key(&gone));

    // Discovery failing (moto gone) keeps the targets being scraped.
    drop(moto);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(manager.targets().active_targets.len(), 2);
    manager.stop();
}
