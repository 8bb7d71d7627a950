//! A private PostgreSQL for the fault matrix: initdb in a temp directory, started by
//! `pg_ctl` on a free loopback port, so a test may stop (`-m fast`) and start it again
//! without touching the shared server. Runs as the `postgres` user when the test is root
//! (initdb refuses root). Stopped (`-m immediate`) and removed on drop.

use crate::procs::{free_port, temp_dir};
use std::path::PathBuf;
use std::process::Command;

pub struct PrivatePg {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

fn bin_dir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs.pop()
        .unwrap_or_else(|| PathBuf::from("/usr/local/bin"))
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

impl PrivatePg {
    fn run(&self, tool: &str, args: &[&str]) -> bool {
        let exe = self.bin.join(tool);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    pub fn start() -> PrivatePg {
        let dir = temp_dir("pg");
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(&dir)
                .status();
            assert!(ok.is_ok_and(|s| s.success()), "chown the PostgreSQL dir");
        }
        let pg = PrivatePg {
            port: free_port(),
            dir,
            bin: bin_dir(),
        };
        let data = pg.dir.join("data");
        let data = data.to_str().unwrap();
        assert!(
            pg.run("initdb", &["-D", data, "-A", "trust", "-U", "postgres"]),
            "initdb"
        );
        pg.up();
        pg
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// `pg_ctl start -w` on loopback, socket in the private directory.
    pub fn up(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("pg.log").display().to_string();
        assert!(
            self.run(
                "pg_ctl",
                &["-D", &self.data(), "-o", &opts, "-l", &log, "-w", "start"]
            ),
            "pg_ctl start"
        );
    }

    /// `pg_ctl stop -m fast`: every connection is cut, committed data stays.
    pub fn stop_fast(&self) {
        assert!(
            self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]),
            "pg_ctl stop"
        );
    }

    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
