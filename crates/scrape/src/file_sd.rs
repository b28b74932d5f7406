//! File-based service discovery: JSON or YAML files of target groups,
//! matched by globs and re-read every refresh interval. A file that fails to
//! parse keeps the targets it last gave, so a half-written file never makes
//! targets vanish.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use pharos_model::Labels;
use serde::Deserialize;

use crate::config::FileSdConfig;
use crate::relabel::is_valid_label_name;
use crate::target::{ADDRESS_LABEL, TargetGroup};

/// The label naming the file a target came from.
pub const FILEPATH_LABEL: &str = "__meta_filepath";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Reads the files of one `file_sd_configs` entry.
#[derive(Debug)]
pub struct FileDiscovery {
    patterns: Vec<String>,
    /// The last good groups per file.
    last_good: HashMap<PathBuf, Vec<TargetGroup>>,
    /// The last error per file, for status pages and tests.
    errors: HashMap<PathBuf, String>,
}

impl FileDiscovery {
    pub fn new(cfg: &FileSdConfig) -> Self {
        FileDiscovery {
            patterns: cfg.files.clone(),
            last_good: HashMap::new(),
            errors: HashMap::new(),
        }
    }

    /// Current errors by file (empty when every file parsed).
    pub fn errors(&self) -> &HashMap<PathBuf, String> {
        &self.errors
    }

    /// Re-reads every matching file and returns all groups. Files that no
    /// longer match lose their targets; files that fail keep their last
    /// good ones.
    pub fn refresh(&mut self) -> Vec<TargetGroup> {
        let mut paths: Vec<PathBuf> = Vec::new();
        for pattern in &self.patterns {
            match glob::glob(pattern) {
                Ok(found) => paths.extend(found.filter_map(Result::ok)),
                Err(err) => tracing::warn!(pattern, %err, "invalid file_sd pattern"),
            }
        }
        paths.sort();
        paths.dedup();
        self.last_good.retain(|p, _| paths.contains(p));
        self.errors.retain(|p, _| paths.contains(p));
        for path in &paths {
            match read_file(path) {
                Ok(groups) => {
                    self.errors.remove(path);
                    self.last_good.insert(path.clone(), groups);
                }
                Err(err) => {
                    tracing::warn!(
                        file = %path.display(),
                        error = %err,
                        "file_sd: keeping the last good targets of a file that failed to load"
                    );
                    self.errors.insert(path.clone(), err);
                }
            }
        }
        let mut out = Vec::new();
        for path in &paths {
            if let Some(groups) = self.last_good.get(path) {
                out.extend(groups.iter().cloned());
            }
        }
        out
    }
}

/// Parses one target file by its extension.
pub fn read_file(path: &Path) -> Result<Vec<TargetGroup>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let name = path.display().to_string();
    let groups: Vec<FileGroup> = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => serde_json::from_str(&text).map_err(|e| e.to_string())?,
        Some("yml" | "yaml") => {
            if text.trim().is_empty() {
                Vec::new()
            } else {
                serde_yaml::from_str(&text).map_err(|e| e.to_string())?
            }
        }
        _ => {
            return Err(format!(
                "retrieving targets from file \"{name}\": unknown extension"
            ));
        }
    };
    let mut out = Vec::with_capacity(groups.len());
    for (i, g) in groups.into_iter().enumerate() {
        for label in g.labels.keys() {
            if !is_valid_label_name(label) {
                return Err(format!("\"{label}\" is not a valid label name"));
            }
        }
        let mut labels = Labels::from_pairs(g.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        labels.set(FILEPATH_LABEL, &name);
        out.push(TargetGroup {
            source: format!("{name}:{i}"),
            targets: g
                .targets
                .iter()
                .map(|t| Labels::from_pairs([(ADDRESS_LABEL, t.as_str())]))
                .collect(),
            labels,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_json_and_yaml_and_keeps_last_good() {
        let dir = tempfile::tempdir().unwrap();
        let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/targets");
        std::fs::copy(testdata.join("clients.json"), dir.path().join("a.json")).unwrap();
        std::fs::copy(testdata.join("extra.yml"), dir.path().join("b.yml")).unwrap();
        let cfg = FileSdConfig {
            files: vec![
                dir.path().join("*.json").display().to_string(),
                dir.path().join("*.yml").display().to_string(),
            ],
            ..FileSdConfig::default()
        };
        let mut sd = FileDiscovery::new(&cfg);
        let groups = sd.refresh();
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].targets.len(), 2);
        assert_eq!(groups[0].labels.get("env"), Some("prod"));
        let a = dir.path().join("a.json").display().to_string();
        assert_eq!(groups[0].labels.get(FILEPATH_LABEL), Some(a.as_str()));
        assert_eq!(groups[2].labels.get("role"), Some("db"));

        // A broken file keeps its previous targets and records why.
        std::fs::write(dir.path().join("a.json"), "[{\"targets\": [").unwrap();
        let groups = sd.refresh();
        assert_eq!(groups.len(), 3);
        assert_eq!(sd.errors().len(), 1);

        // A fixed file replaces them; a removed file drops its targets.
        std::fs::write(dir.path().join("a.json"), "[{\"targets\": [\"x:1\"]}]").unwrap();
        std::fs::remove_file(dir.path().join("b.yml")).unwrap();
        let groups = sd.refresh();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].targets[0].get(ADDRESS_LABEL), Some("x:1"));
        assert!(sd.errors().is_empty());
    }

    #[test]
    fn rejects_bad_label_names_and_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.yml");
        std::fs::write(&bad, "- targets: [a]\n  labels: {'a-b': x}\n").unwrap();
        assert!(read_file(&bad).unwrap_err().contains("a-b"));
        std::fs::write(&bad, "- targets: [a]\n  label: {a: x}\n").unwrap();
        assert!(read_file(&bad).unwrap_err().contains("label"));
    }
}
