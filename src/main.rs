//! Entry point: everything happens in `cli`.

fn main() {
    std::process::exit(wazuh_misp::cli::main());
}
