//! Replacing a file all at once: output goes to a temporary file next to the
//! destination, which is renamed over it only when everything was written. A failure
//! (or an interrupted run) leaves the previous file, or no file, exactly as it was,
//! never a truncated or half-written one.
//!
//! The temporary file is `.NAME.PID.N.tmp` in the destination's folder (a rename
//! within one file system is atomic), created exclusively with the permissions a new
//! file gets (`0666` less the umask), or those of the file it replaces; it is removed
//! on every path that does not commit it. A destination that exists and is not a
//! regular file (`/dev/null`, a FIFO, a terminal) is written directly: there is no
//! file to protect, and renaming over a device would be wrong.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A file being written; [`AtomicFile::commit`] puts it in place.
pub struct AtomicFile {
    file: File,
    /// `Some((temporary, destination))` unless writing a device directly.
    rename: Option<(PathBuf, PathBuf)>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl AtomicFile {
    /// Starts writing a new version of `dest`. Nothing at `dest` changes yet.
    pub fn create(dest: &Path) -> io::Result<AtomicFile> {
        let old = std::fs::metadata(dest).ok();
        if old.as_ref().is_some_and(|m| !m.is_file()) {
            let file = OpenOptions::new().write(true).open(dest)?;
            return Ok(AtomicFile { file, rename: None });
        }
        let name = dest
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let mut tmp_name = std::ffi::OsString::from(".");
            tmp_name.push(name);
            tmp_name.push(format!(".{}.{n}.tmp", std::process::id()));
            let tmp = dir.join(tmp_name);
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o666)
                .open(&tmp)
            {
                Ok(file) => {
                    let f = AtomicFile {
                        file,
                        rename: Some((tmp, dest.to_path_buf())),
                    };
                    if let Some(m) = old {
                        f.file.set_permissions(m.permissions())?;
                    }
                    return Ok(f);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Flushes the data to disk and renames the file over the destination.
    pub fn commit(mut self) -> io::Result<()> {
        self.file.flush()?;
        if let Some((tmp, dest)) = self.rename.take() {
            let done = self
                .file
                .sync_all()
                .and_then(|()| std::fs::rename(&tmp, &dest));
            if done.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            done?;
        }
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Some((tmp, _)) = self.rename.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Replaces `dest` with `data` all at once.
pub fn write(dest: &Path, data: &[u8]) -> io::Result<()> {
    let mut f = AtomicFile::create(dest)?;
    f.write_all(data)?;
    f.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaced_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        std::fs::write(&p, b"old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        // Dropped without commit: the old file stays, no temporary is left.
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"half").unwrap();
        assert_eq!(entries(dir.path()).len(), 2);
        drop(f);
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(entries(dir.path()), ["out"]);
        // Committed: replaced, with the old file's permissions.
        write(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        assert_eq!(entries(dir.path()), ["out"]);
    }

    #[test]
    fn devices_are_written_directly() {
        write(Path::new("/dev/null"), b"x").unwrap();
        assert!(std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device());
    }

    #[test]
    fn a_missing_folder_is_an_error_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write(&dir.path().join("no/such/out"), b"x").is_err());
        assert!(entries(dir.path()).is_empty());
    }
}
