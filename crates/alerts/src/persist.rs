//! Snapshots of silences and the notification log on local disk
//! (`local_path`) and, when the role has one, in the object store, so a
//! restart — even on a new disk — neither forgets silences nor notifies
//! again what was already sent. The files are our own JSON, not
//! upstream's protobuf snapshots.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dispatch::LogRecord;
use crate::silences::Silence;

const SILENCES: &str = "silences.json";
const NFLOG: &str = "nflog.json";
const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    #[error("cannot write snapshot {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read snapshot {path}: {reason}")]
    Read { path: PathBuf, reason: String },
}

#[derive(Serialize, Deserialize)]
struct SilencesFile {
    version: u32,
    silences: Vec<Silence>,
}

#[derive(Serialize, Deserialize)]
struct LogFile {
    version: u32,
    entries: Vec<LogRecord>,
}

/// Writes `bytes` to `dir/name` so a crash leaves either the old or the
/// new file, never a torn one: a temporary file, synced, then renamed.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), PersistError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let err = |source| PersistError::Write {
        path: path.clone(),
        source,
    };
    // The directory is made at start (`prepare`), not here: a snapshot
    // written at exit must not re-create a directory removed meanwhile.
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok(())
}

fn read<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, PersistError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(PersistError::Read {
                path: path.to_owned(),
                reason: e.to_string(),
            });
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| PersistError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

/// The two snapshot files' names, as written locally and in the object
/// store.
pub const FILES: [&str; 2] = [SILENCES, NFLOG];

/// The bytes of the two snapshot files, in the order of [`FILES`].
pub fn encode(silences: Vec<Silence>, log: Vec<LogRecord>) -> [Vec<u8>; 2] {
    let s = SilencesFile {
        version: VERSION,
        silences,
    };
    let l = LogFile {
        version: VERSION,
        entries: log,
    };
    // Serializing plain structs of strings and numbers cannot fail.
    [
        serde_json::to_vec(&s).unwrap_or_default(),
        serde_json::to_vec(&l).unwrap_or_default(),
    ]
}

/// Reads snapshot files fetched from elsewhere (`origin` names them in
/// errors); `None` is a missing file.
pub fn decode(
    origin: &str,
    silences: Option<&[u8]>,
    log: Option<&[u8]>,
) -> Result<(Vec<Silence>, Vec<LogRecord>), PersistError> {
    let bad = |name: &str, e: serde_json::Error| PersistError::Read {
        path: PathBuf::from(format!("{origin}/{name}")),
        reason: e.to_string(),
    };
    let s = match silences {
        Some(b) => {
            serde_json::from_slice::<SilencesFile>(b)
                .map_err(|e| bad(SILENCES, e))?
                .silences
        }
        None => Vec::new(),
    };
    let l = match log {
        Some(b) => {
            serde_json::from_slice::<LogFile>(b)
                .map_err(|e| bad(NFLOG, e))?
                .entries
        }
        None => Vec::new(),
    };
    Ok((s, l))
}

/// Writes both snapshot files to `dir`; returns their bytes so the caller
/// can copy them elsewhere.
pub fn save(
    dir: &Path,
    silences: Vec<Silence>,
    log: Vec<LogRecord>,
) -> Result<[Vec<u8>; 2], PersistError> {
    let files = encode(silences, log);
    write_atomic(dir, SILENCES, &files[0])?;
    write_atomic(dir, NFLOG, &files[1])?;
    Ok(files)
}

/// Creates the snapshot directory.
pub fn prepare(dir: &Path) -> Result<(), PersistError> {
    std::fs::create_dir_all(dir).map_err(|source| PersistError::Write {
        path: dir.to_owned(),
        source,
    })
}

/// What a snapshot directory holds; missing files are empty.
pub fn load(dir: &Path) -> Result<(Vec<Silence>, Vec<LogRecord>), PersistError> {
    let s: Option<SilencesFile> = read(&dir.join(SILENCES))?;
    let l: Option<LogFile> = read(&dir.join(NFLOG))?;
    Ok((
        s.map(|f| f.silences).unwrap_or_default(),
        l.map(|f| f.entries).unwrap_or_default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::silences::SilenceMatcher;

    #[test]
    fn round_trips_and_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), (Vec::new(), Vec::new()));
        let gone = dir.path().join("gone");
        assert!(
            save(&gone, vec![], vec![]).is_err(),
            "no directory: no write"
        );
        prepare(&gone).unwrap();
        save(&gone, vec![], vec![]).unwrap();
        let sil = Silence {
            id: "a".into(),
            matchers: vec![SilenceMatcher {
                name: "x".into(),
                value: "y".into(),
                is_regex: false,
                is_equal: true,
            }],
            starts_at: 1,
            ends_at: 2,
            updated_at: 1,
            created_by: "me".into(),
            comment: "c".into(),
        };
        let rec = LogRecord {
            group_key: "{}:{}".into(),
            receiver: "r".into(),
            integration: "webhook".into(),
            index: 0,
            send_resolved: true,
            firing: vec![1, 2],
            resolved: vec![],
            at: 5,
        };
        save(dir.path(), vec![sil.clone()], vec![rec.clone()]).unwrap();
        assert_eq!(
            load(dir.path()).unwrap(),
            (vec![sil.clone()], vec![rec.clone()])
        );
        save(dir.path(), vec![], vec![rec.clone()]).unwrap();
        assert_eq!(load(dir.path()).unwrap(), (vec![], vec![rec]));
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.ends_with(".tmp")),
            "no temp left: {names:?}"
        );
        std::fs::write(dir.path().join(SILENCES), b"{not json").unwrap();
        assert!(matches!(load(dir.path()), Err(PersistError::Read { .. })));

        let [sb, lb] = encode(vec![sil.clone()], vec![]);
        assert_eq!(
            decode("remote", Some(&sb), Some(&lb)).unwrap(),
            (vec![sil], vec![])
        );
        assert_eq!(decode("remote", None, None).unwrap(), (vec![], vec![]));
        let err = decode("remote", Some(b"[1"), None).unwrap_err().to_string();
        assert!(err.contains("remote/silences.json"), "{err}");
    }
}
