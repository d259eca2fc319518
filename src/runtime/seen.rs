//! `var/custom-misp/native-seen`: the ids of the last alerts of our CDB rules this runtime
//! enriched. With native matching on, ossec.conf holds two custom-misp `<integration>` blocks,
//! and integratord runs every block whose filters an alert passes (`src/os_integrator/
//! integrator.c`): a CDB hit that also passes the runtime's block (our rules keep their stock
//! parent's groups) would be enriched twice. The second run finds its id here and stops. Only
//! alerts carrying our CDB rules' group ever open this file.

use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

pub const SEEN_FILE: &str = "native-seen";
/// integratord runs the blocks for one alert back to back, so a few ids are plenty.
const KEPT: usize = 64;

/// Records `alert_id`; false when it was recorded already (the other block enriched it).
pub fn first_time(state_dir: &Path, alert_id: &str) -> io::Result<bool> {
    if alert_id.is_empty() || alert_id.contains('\n') {
        return Ok(true);
    }
    let (mut file, _) = crate::state::open_shared(&state_dir.join(SEEN_FILE))?;
    // SAFETY: flock on a descriptor we own; released when the file closes.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut text = String::new();
    // A damaged file is only a forgotten id: start again.
    if file.read_to_string(&mut text).is_err() {
        text.clear();
    }
    let mut ids: Vec<&str> = text.lines().collect();
    if ids.contains(&alert_id) {
        return Ok(false);
    }
    ids.push(alert_id);
    let keep = &ids[ids.len().saturating_sub(KEPT)..];
    let mut out = keep.join("\n");
    out.push('\n');
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(out.as_bytes())?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_is_enriched_once_and_the_file_stays_small() {
        let dir = tempfile::tempdir().unwrap();
        assert!(first_time(dir.path(), "1733380000.100").unwrap());
        assert!(!first_time(dir.path(), "1733380000.100").unwrap());
        for i in 0..200 {
            assert!(first_time(dir.path(), &format!("1733380001.{i}")).unwrap());
        }
        let text = std::fs::read_to_string(dir.path().join(SEEN_FILE)).unwrap();
        assert_eq!(text.lines().count(), KEPT);
        assert!(
            first_time(dir.path(), "1733380000.100").unwrap(),
            "long forgotten"
        );
    }
}
