//! Private files and directories: everything shiren keeps on disk (the data dir, the SQLite database, stored images,
//! key files) is for its own user only. New directories are created 0700 and new files 0600; directories and files
//! left 0755/0644 by older versions are tightened at start when this user owns them (a file or directory of another
//! user is left alone: shiren may be running under a service account over a directory someone else manages).
use std::io;
use std::path::Path;

/// Mode of every directory shiren creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file shiren creates.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and its missing parents, each 0700 (existing ones stay as they are).
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(DIR_MODE);
    }
    b.create(dir)
}

/// [`create_dir`] for async code.
pub async fn create_dir_async(dir: &Path) -> io::Result<()> {
    let mut b = tokio::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    b.mode(DIR_MODE);
    b.create(dir).await
}

/// Options that create a new file 0600 (write only, failing when it exists).
pub fn new_file_options() -> std::fs::OpenOptions {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(FILE_MODE);
    }
    o
}

/// Writes `bytes` to a new file `path` (0600), failing when it exists.
pub async fn write_new_async(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut o = tokio::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    o.mode(FILE_MODE);
    let mut f = o.open(path).await?;
    f.write_all(bytes).await?;
    f.flush().await
}

/// Writes `contents` to `path` (0600, synced) unless it exists; true when this call created it. Safe when several
/// processes race: the file appears whole (written aside, then linked), and the first one wins.
pub fn create_private_file_once(path: &Path, contents: &[u8]) -> io::Result<bool> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dir(dir)?;
    }
    let tmp = path.with_extension(format!(
        "tmp-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    {
        let mut f = new_file_options().open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Replaces `path` whole with `contents` (0600, synced, renamed into place): readers see the old or the new file,
/// never a part.
pub fn replace_private_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!(
        "tmp-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let written = (|| {
        let mut f = new_file_options().open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Creates `path` empty with mode 0600 when it does not exist (so that SQLite, which gives a new database, its WAL
/// and its shared-memory file the database file's mode, keeps them all private).
pub fn create_file_if_missing(path: &Path) -> io::Result<()> {
    match new_file_options().open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// The user this process runs as: the owner of `/proc/self` (Linux); unknown elsewhere, and then nothing is
/// tightened.
#[cfg(unix)]
fn own_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// Takes group and other permissions away from `path` (a directory to 0700, a file to 0600) when it exists, is owned
/// by this process's user and allows more. Symbolic links are not followed. Returns whether it changed anything;
/// failures are logged, not fatal (the service still works, only less privately).
pub fn tighten(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return false;
        };
        let want = if meta.is_dir() {
            DIR_MODE
        } else if meta.is_file() {
            FILE_MODE
        } else {
            return false;
        };
        let mode = meta.mode() & 0o777;
        if mode & 0o077 == 0 || own_uid() != Some(meta.uid()) {
            return false;
        }
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & want)) {
            Ok(()) => {
                tracing::info!(path = %path.display(), from = format!("{mode:o}"), to = format!("{:o}", mode & want),
                    "tightened permissions");
                true
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot tighten permissions");
                false
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// A SQLite database file and the WAL and shared-memory files beside it.
pub fn sqlite_files(db: &Path) -> [std::path::PathBuf; 3] {
    let with = |suffix: &str| {
        let mut s = db.as_os_str().to_owned();
        s.push(suffix);
        std::path::PathBuf::from(s)
    };
    [db.to_path_buf(), with("-wal"), with("-shm")]
}

/// At start: creates the data dir (0700) when missing, and tightens it, the object store's directories and the key
/// files in it when this user owns them. The database files are seen to when the database is opened.
pub fn secure_data_dir(data_dir: &Path) -> io::Result<()> {
    create_dir(data_dir)?;
    tighten(data_dir);
    for name in ["gateway_key.pem", "cloud_secret.key"] {
        tighten(&data_dir.join(name));
    }
    // The object store: its root and the directory of each kind of object (images inside them are out of reach of
    // other users once their directory is 0700, so the many files themselves are not walked).
    let objects = data_dir.join("objects");
    tighten(&objects);
    if let Ok(entries) = std::fs::read_dir(&objects) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                tighten(&entry.path());
            }
        }
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_private_and_old_ones_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("a/data");
        secure_data_dir(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        // What an older version left behind.
        let objects = data.join("objects/faces");
        std::fs::create_dir_all(&objects).unwrap();
        for d in [&data, &data.join("objects"), &objects] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let key = data.join("gateway_key.pem");
        std::fs::write(&key, "k").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        secure_data_dir(&data).unwrap();
        for d in [&data, &data.join("objects"), &objects] {
            assert_eq!(mode(d), 0o700, "{}", d.display());
        }
        assert_eq!(mode(&key), 0o600);
        // Already private: nothing to do; a missing path: nothing either.
        assert!(!tighten(&key));
        assert!(!tighten(&data.join("missing")));
        let db = data.join("x.sqlite");
        create_file_if_missing(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        std::fs::write(&db, "keep").unwrap();
        create_file_if_missing(&db).unwrap();
        assert_eq!(std::fs::read(&db).unwrap(), b"keep");
        assert_eq!(
            sqlite_files(&db)[1],
            data.join("x.sqlite-wal"),
            "WAL beside the database"
        );
    }
}

/// The file path in a SQLite URL (`sqlite://PATH?...` or `sqlite:PATH`), `None` for other databases and in-memory ones.
pub fn sqlite_path(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    (!path.is_empty() && path != ":memory:").then(|| path.to_string())
}

/// Before a SQLite database is opened: its directory is created (0700) and the file created 0600 (its WAL and
/// shared-memory files follow its mode), older ones tightened. Only where the URL lets SQLite create the file
/// (`mode=rwc`, as the default URL has it) is a missing file created: elsewhere it stays an error. Other databases:
/// nothing to do.
pub fn prepare_sqlite(url: &str) -> io::Result<()> {
    let Some(path) = sqlite_path(url) else {
        return Ok(());
    };
    let path = Path::new(&path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dir(dir).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display()))
        })?;
    }
    if url.contains("mode=rwc") {
        create_file_if_missing(path).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display()))
        })?;
    }
    for f in sqlite_files(path) {
        tighten(&f);
    }
    Ok(())
}
