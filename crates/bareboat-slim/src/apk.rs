//! apk's database of installed packages (`/lib/apk/db/installed`), trimmed to what a slim
//! image keeps: a package none of whose files remain goes, and of the others only the
//! files that remain are listed, so that scanners see exactly what is there.

/// A package the trimmed database lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// Its name (`P:`).
    pub name: String,
    /// Its version (`V:`).
    pub version: String,
    /// Its files that remain, relative to the root.
    pub files: Vec<String>,
}

/// The database `text` with only the packages, and the files, for which `kept` holds
/// (given a file's path relative to the root), and the packages it lists.
pub fn trim(text: &str, kept: impl Fn(&str) -> bool) -> (String, Vec<Listed>) {
    let mut out = String::new();
    let mut listed = Vec::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut lines = Vec::new();
        let mut package = Listed {
            name: String::new(),
            version: String::new(),
            files: Vec::new(),
        };
        let mut dir = String::new();
        // Whether the lines read belong to what is kept: an `R:` line's `a:` and `Z:`
        // lines go with it.
        let mut keeping = true;
        for line in block.lines() {
            let (key, value) = line.split_once(':').unwrap_or((line, ""));
            match key {
                "R" => {
                    let path = match dir.is_empty() {
                        true => value.to_string(),
                        false => format!("{dir}/{value}"),
                    };
                    keeping = kept(&path);
                    if keeping {
                        package.files.push(path);
                    }
                }
                "a" | "Z" => {}
                _ => {
                    keeping = true;
                    match key {
                        "P" => package.name = value.to_string(),
                        "V" => package.version = value.to_string(),
                        "F" => dir = value.trim_matches('/').to_string(),
                        _ => {}
                    }
                }
            }
            if keeping {
                lines.push(line);
            }
        }
        if package.files.is_empty() {
            continue;
        }
        out.push_str(&lines.join("\n"));
        out.push_str("\n\n");
        listed.push(package);
    }
    (out, listed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_without_kept_files_go_and_the_others_list_only_what_is_kept() {
        let db = "C:Q1aaa=\nP:musl\nV:1.2.5-r0\nA:x86_64\nF:lib\nR:ld-musl-x86_64.so.1\na:0:0:755\nZ:Q1bbb=\nR:libc.musl-x86_64.so.1\nZ:Q1ccc=\nF:usr/share/doc\nR:README\nZ:Q1ddd=\n\n\
C:Q1eee=\nP:busybox\nV:1.36.1-r0\nF:bin\nR:busybox\nZ:Q1fff=\n\n";
        let (text, listed) = trim(db, |p| p.starts_with("lib/ld-musl"));
        assert_eq!(
            text,
            "C:Q1aaa=\nP:musl\nV:1.2.5-r0\nA:x86_64\nF:lib\nR:ld-musl-x86_64.so.1\na:0:0:755\nZ:Q1bbb=\nF:usr/share/doc\n\n"
        );
        assert_eq!(
            listed,
            [Listed {
                name: "musl".into(),
                version: "1.2.5-r0".into(),
                files: vec!["lib/ld-musl-x86_64.so.1".into()],
            }]
        );
        assert_eq!(trim(db, |_| false).1, []);
    }
}
