//! Query-string values as dockerd reads them (its `httputils.BoolValue`): a boolean is false
//! when empty, `0`, `no`, `false` or `none` in any case and around white space, and true
//! otherwise. docker-py sends `True`/`False`, the docker CLI `1`/`0`, curl users `yes`.

/// A boolean query value.
pub fn bool_value(v: &str) -> bool {
    let s = v.trim().to_ascii_lowercase();
    !matches!(s.as_str(), "" | "0" | "no" | "false" | "none")
}

/// An optional boolean query value; absent is false.
pub fn opt_bool(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(bool_value)
}

/// An optional boolean query value with a default for when it is absent (`BoolValueOrDefault`).
pub fn bool_or(v: Option<&str>, default: bool) -> bool {
    v.map_or(default, bool_value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_booleans_as_dockerd() {
        for t in ["1", "true", "True", "TRUE", "yes", " on ", "2"] {
            assert!(bool_value(t), "{t:?}");
        }
        for f in ["", "0", "false", "False", "no", "NO", "none", " none "] {
            assert!(!bool_value(f), "{f:?}");
        }
        assert!(!opt_bool(&None));
        assert!(bool_or(None, true));
        assert!(!bool_or(Some("False"), true));
    }
}
