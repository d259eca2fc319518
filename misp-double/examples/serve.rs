//! Runs a MISP double for manual testing (curl, the wazuh-misp wizard, a demo):
//! `cargo run -p misp-double --example serve -- [--tls] [--seconds N]`.
//! Prints the URL, the API key and (with `--tls`) the path of the CA file, then serves for N
//! seconds (default 600) or until interrupted.

use std::time::Duration;

use misp_double::{MispDouble, Options};

fn main() {
    let mut tls = false;
    let mut seconds: u64 = 600;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--tls" => tls = true,
            "--seconds" => {
                seconds = match args.next().and_then(|s| s.parse().ok()) {
                    Some(n) => n,
                    None => {
                        eprintln!("--seconds needs a number");
                        std::process::exit(2);
                    }
                }
            }
            other => {
                eprintln!("unknown argument {other}; usage: serve [--tls] [--seconds N]");
                std::process::exit(2);
            }
        }
    }
    let misp = MispDouble::start(Options {
        tls,
        ..Options::default()
    });
    println!("url:     {}", misp.url());
    println!("api key: {}", misp.api_key());
    if tls {
        let path = std::env::temp_dir().join(format!("misp-double-ca-{}.pem", misp.port()));
        if let Err(e) = misp.write_ca_file(&path) {
            eprintln!("cannot write the CA file: {e}");
            std::process::exit(1);
        }
        println!("ca file: {}", path.display());
    }
    println!(
        "try:     curl -s {}{} -H 'Authorization: {}' -H 'Accept: application/json' \
         -H 'Content-Type: application/json' -d '{{\"value\":\"185.220.101.47\"}}' {}/attributes/restSearch",
        if tls { "--cacert " } else { "" },
        if tls {
            std::env::temp_dir()
                .join(format!("misp-double-ca-{}.pem", misp.port()))
                .display()
                .to_string()
        } else {
            String::new()
        },
        misp.api_key(),
        misp.url()
    );
    std::thread::sleep(Duration::from_secs(seconds));
}
