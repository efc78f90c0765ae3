//! Config files against `git config --file F --list`.

use crate::common::git_lines;

#[test]
fn config_entries_equal_git_config_list() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("config");
    let text = concat!(
        "# a comment\n",
        "; another\n",
        "[core]\n",
        "\trepositoryformatversion = 0\n",
        "\tBare = false   ; trailing comment\n",
        "  logAllRefUpdates\n",
        "[remote \"origin\"]\n",
        "\turl = git@github.com:Owner/Repo.git\n",
        "\tfetch = +refs/heads/*:refs/remotes/origin/*\n",
        "[remote \"we\\\"ird \\\\name\"]\n",
        "\turl = \"https://example.com/a b\"   # quoted, with a space\n",
        "[Branch.Main]\n",
        "\tremote = origin\n",
        "[alias]\n",
        "\tlg = log --graph \\\n",
        "\t  --oneline\n",
        "\tesc = \"tab\\there\\nnew \\\"q\\\" \\\\ back\"\n",
        "\tinner = a   b\t c  \n",
        "\tsemi = \"x;y#z\" ; gone\n",
        "\tempty =\n",
        "[section] inline = yes\n",
        "[remote \"origin\"]\n",
        "\turl = https://github.com/owner/second.git\n",
    );
    std::fs::write(&file, text).expect("write");
    let file_arg = file.to_string_lossy().to_string();
    let expected = git_lines(tmp.path(), &["config", "--file", &file_arg, "--list"]);
    let ours: Vec<String> = gitcore::config::parse(text)
        .into_iter()
        .map(|e| {
            let mut name = e.section;
            if let Some(sub) = e.subsection {
                name.push('.');
                name.push_str(&sub);
            }
            name.push('.');
            name.push_str(&e.key);
            match e.value {
                Some(v) => format!("{name}={v}"),
                None => name,
            }
        })
        .flat_map(|l| l.lines().map(str::to_string).collect::<Vec<_>>())
        .collect();
    assert_eq!(ours, expected);
    // The last value wins, as `git config --get` answers.
    let get = gitcore::config::get(&file, "remote", Some("origin"), "url");
    let theirs = git_lines(
        tmp.path(),
        &["config", "--file", &file_arg, "--get", "remote.origin.url"],
    );
    assert_eq!(get.as_deref(), theirs.first().map(String::as_str));
}
