//! Writes the `deploy/` manifests: `cargo run -p ferry-deploy --example render -- deploy`.
#![forbid(unsafe_code)]

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "deploy".into());
    std::fs::create_dir_all(&dir)?;
    for (name, contents) in ferry_deploy::deploy_files()? {
        let path = std::path::Path::new(&dir).join(name);
        std::fs::write(&path, contents)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
