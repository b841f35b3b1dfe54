use super::*;

fn user(id: &str) -> ExternalUser {
    ExternalUser {
        external_id: id.into(),
        user_name: format!("{id}@example.com"),
        email: Some(format!("{id}@example.com")),
        display_name: "Ada Lovelace".into(),
        given_name: Some("Ada".into()),
        family_name: Some("Lovelace".into()),
        job_title: None,
        department: None,
        employee_id: None,
        employee_type: None,
        suspended: false,
        aliases: Vec::new(),
        ..ExternalUser::default()
    }
}

fn group(id: &str) -> ExternalGroup {
    ExternalGroup {
        external_id: id.into(),
        display_name: "Team".into(),
        email: None,
        description: None,
        members: None,
    }
}

fn actions(warnings: &Warnings) -> Vec<(Option<&'static str>, Action)> {
    warnings
        .kept()
        .into_iter()
        .map(|w| (w.field, w.action))
        .collect()
}

#[test]
fn clean_removes_nul_c0_c1_and_bidi_controls_from_every_field() {
    let warnings = Warnings::default();
    let mut u = user("u1");
    u.display_name = "Ada\0 \u{1b}[31mLove\u{7}lace\u{85}".into();
    u.department = Some("Fin\u{202E}ance\u{2066}".into());
    u.job_title = Some("Tab\there".into());
    let u = clean(u, &warnings).unwrap();
    assert_eq!(u.display_name, "Ada [31mLovelace");
    assert_eq!(u.department.as_deref(), Some("Finance"));
    assert_eq!(
        u.job_title.as_deref(),
        Some("Tabhere"),
        "one-line fields take no tab"
    );
    assert_eq!(
        actions(&warnings),
        [
            (Some("displayName"), Action::Cleaned),
            (Some("jobTitle"), Action::Cleaned),
            (Some("department"), Action::Cleaned),
        ]
    );
    assert!(
        warnings.kept()[0].message.contains("4 control"),
        "{}",
        warnings.kept()[0].message
    );
}

#[test]
fn clean_keeps_every_script_emoji_and_joiners_byte_for_byte() {
    let warnings = Warnings::default();
    let mut u = user("u1");
    let names = [
        "Zoë Łukasz-Ñúñez",
        "山田 太郎",
        "محمد بن سلمان",
        "שלום",
        "👩🏽‍💻 team 👨‍👩‍👧‍👦",
        "a\u{200D}b\u{200F}c",
    ];
    for name in names {
        u.display_name = name.into();
        u.department = Some(name.into());
        let cleaned = clean(u.clone(), &warnings).unwrap();
        assert_eq!(cleaned.display_name, name);
        assert_eq!(cleaned.department.as_deref(), Some(name));
    }
    assert_eq!(warnings.count(), 0);
}

#[test]
fn clean_cuts_long_fields_at_a_character_boundary() {
    let warnings = Warnings::default();
    let mut u = user("u1");
    u.department = Some("é".repeat(5_000));
    let u = clean(u, &warnings).unwrap();
    let department = u.department.unwrap();
    assert_eq!(department.chars().count(), MAX_FIELD_CHARS);
    assert!(department.chars().all(|c| c == 'é'));
    assert_eq!(
        actions(&warnings),
        [(Some("department"), Action::Truncated)]
    );
    assert!(warnings.kept()[0].message.contains("5000"));
}

#[test]
fn clean_keeps_line_breaks_in_a_group_description_only() {
    let warnings = Warnings::default();
    let mut g = group("g1");
    g.description = Some("line one\nline two\0".into());
    g.display_name = "Team\nA".into();
    let g = clean(g, &warnings).unwrap();
    assert_eq!(g.description.as_deref(), Some("line one\nline two"));
    assert_eq!(g.display_name, "TeamA");
}

#[test]
fn clean_falls_back_when_a_required_field_is_left_empty() {
    let warnings = Warnings::default();
    let mut u = user("u1");
    u.display_name = "\u{202E}\u{1}".into();
    let u = clean(u, &warnings).unwrap();
    assert_eq!(u.display_name, "u1@example.com", "the userName is shown");
    let mut g = group("g1");
    g.display_name = "\0".into();
    let g = clean(g, &warnings).unwrap();
    assert_eq!(g.display_name, "g1", "no email: the id is shown");
    let mut u = user("u2");
    u.email = Some("\u{7}".into());
    let u = clean(u, &warnings).unwrap();
    assert_eq!(u.email, None, "an optional field left empty is absent");
}

#[test]
fn clean_skips_a_record_whose_id_is_refused_and_shows_the_id_safely() {
    let warnings = Warnings::default();
    assert!(clean(user("u\u{0}1"), &warnings).is_none());
    assert!(clean(group(&"9".repeat(MAX_ID_CHARS + 1)), &warnings).is_none());
    assert!(clean(user(""), &warnings).is_none());
    let kept = warnings.kept();
    assert_eq!(kept.len(), 3);
    assert!(kept.iter().all(|w| w.action == Action::Skipped));
    assert_eq!(kept[0].external_id, "uU+00001");
    assert_eq!(kept[1].object, ObjectKind::Group);
    assert!(kept[1].external_id.ends_with('…'));
}

#[test]
fn clean_cuts_aliases_to_the_maximum_and_cleans_each() {
    let warnings = Warnings::default();
    let mut u = user("u1");
    u.aliases = (0..150).map(|i| format!("a{i}@example.com")).collect();
    u.aliases[0] = "bad\u{202E}@example.com".into();
    u.aliases[1] = "\0".into();
    let u = clean(u, &warnings).unwrap();
    assert_eq!(
        u.aliases.len(),
        MAX_ALIASES - 1,
        "the alias left empty is gone"
    );
    assert_eq!(u.aliases[0], "bad@example.com");
    assert_eq!(
        actions(&warnings),
        [
            (Some("aliases"), Action::Truncated),
            (Some("aliases"), Action::Cleaned),
        ]
    );
}

#[test]
fn clean_members_ignores_refused_ids_and_caps_the_list() {
    let warnings = Warnings::default();
    let members = clean_members(
        "g1",
        vec![
            Member::User("u1".into()),
            Member::Group("u\u{0}2".into()),
            Member::Group("g3".into()),
        ],
        &warnings,
    );
    assert_eq!(
        members,
        [Member::User("u1".into()), Member::Group("g3".into())]
    );
    assert_eq!(
        actions(&warnings),
        [(Some("members"), Action::IgnoredMember)]
    );
    let mut many: Vec<String> = (0..MAX_MEMBERS + 3).map(|i| i.to_string()).collect();
    cap_members("g1", &mut many, &warnings);
    assert_eq!(many.len(), MAX_MEMBERS);
    assert_eq!(warnings.count(), 2);
}

#[test]
fn warnings_count_exactly_and_keep_the_first_thousand() {
    let warnings = Warnings::default();
    for i in 0..MAX_WARNINGS_KEPT + 500 {
        warnings.push(Warning::new(
            ObjectKind::User,
            &i.to_string(),
            None,
            Action::Skipped,
            "x",
        ));
    }
    assert_eq!(warnings.count(), (MAX_WARNINGS_KEPT + 500) as u64);
    assert_eq!(warnings.kept().len(), MAX_WARNINGS_KEPT);
    assert_eq!(warnings.kept()[0].external_id, "0");
    assert_eq!(
        warnings.by_action()[2],
        (Action::Skipped, (MAX_WARNINGS_KEPT + 500) as u64)
    );
}

#[test]
fn clean_value_cleans_a_grant_claim() {
    assert_eq!(
        clean_value("tenant", Some("con\u{202E}toso".into())).as_deref(),
        Some("contoso")
    );
    assert_eq!(clean_value("tenant", Some("\0".into())), None);
    assert_eq!(clean_value("tenant", None), None);
}

proptest::proptest! {
    /// Whatever a provider sends, what comes out passes the edge's own check.
    #[test]
    fn clean_output_always_passes_the_text_policy(
        name in "\\PC*|[\\x00-\\x1f\\u{7f}-\\u{9f}\\u{202a}-\\u{202e}\\u{2066}-\\u{2069}a-z]{0,40}",
        long in proptest::collection::vec(proptest::char::any(), 0..700),
    ) {
        let warnings = Warnings::default();
        let mut u = user("u1");
        u.display_name = name.clone();
        u.department = Some(long.iter().collect());
        u.aliases = vec![name.clone()];
        let u = clean(u, &warnings).unwrap();
        for value in [&u.display_name, &u.user_name, u.department.as_deref().unwrap_or("")] {
            proptest::prop_assert!(text::check_len(value, Lines::Single, MAX_FIELD_CHARS).is_ok());
        }
        proptest::prop_assert!(!u.display_name.trim().is_empty());
        for alias in &u.aliases {
            proptest::prop_assert!(text::check(alias, Lines::Single).is_ok());
        }
    }
}
